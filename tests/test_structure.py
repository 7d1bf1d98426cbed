"""The scanpy function contract of STYLE.md, checked on every public pp/tl/pl function."""

import inspect
from typing import get_args, get_type_hints

import pytest

import scmm
from scmm.tl import FitKeywords, keyword_parameters

PUBLIC = [
    (ns, name, getattr(getattr(scmm, ns), name))
    for ns in ("pp", "tl", "pl")
    for name in getattr(scmm, ns).__all__
    if inspect.isfunction(getattr(getattr(scmm, ns), name))
]


def test_namespaces_export_something():
    assert {"fit_baseline", "predict"} <= set(scmm.tl.__all__)
    assert {"normalize", "svd", "split_cells"} <= set(scmm.pp.__all__)


@pytest.mark.parametrize(("ns", "name", "func"), PUBLIC, ids=[f"{n}.{f}" for n, f, _ in PUBLIC])
def test_signature_contract(ns, name, func):
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= 3, f"{ns}.{name} has more than 3 positional parameters"
    for p in positional:
        assert not isinstance(p.default, bool), f"{ns}.{name}: positional boolean `{p.name}`"
    names = {p.name for p in params}
    assert not {"copy", "inplace"} <= names, f"{ns}.{name} has both copy and inplace"
    if "seed" in names or "random_state" in names:
        pytest.fail(f"{ns}.{name}: take `rng`, not seed/random_state")
    doc = inspect.getdoc(func) or ""
    for section in ("Parameters", "Returns"):
        assert section in doc, f"{ns}.{name} docstring lacks {section}"
    for p in params:
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            assert f"\n{p.name}\n" in f"\n{doc}\n", f"{ns}.{name}: `{p.name}` undocumented"
    if ns == "tl" and name.startswith("fit_"):
        assert [p.name for p in positional] == ["mdata", "source", "target"]
        keywords = _contract_keywords(func)
        assert set(FitKeywords.__annotations__) <= set(keywords), f"{name}: not the fit contract"
        copied = names & set(keywords)
        assert not copied, f"{name} repeats the fit-contract keywords {copied} in its signature"
        for key in keywords:
            assert f"\n{key}\n" in f"\n{doc}\n", f"{ns}.{name}: `{key}` undocumented"


def _contract_keywords(func) -> dict:
    """The keys of a ``fit_*``'s ``**contract``: the one typed definition of the fit contract."""
    var = [p for p in inspect.signature(func).parameters.values() if p.kind is p.VAR_KEYWORD]
    assert [p.name for p in var] == ["contract"], f"{func.__name__} takes no `**contract`"
    (typed,) = get_args(get_type_hints(func)["contract"])  # Unpack[FitKeywords] (PEP 692)
    assert (
        issubclass(typed, dict)
        and FitKeywords.__annotations__.keys() <= typed.__annotations__.keys()
    )
    return typed.__annotations__


FITS = [(name, func) for ns, name, func in PUBLIC if ns == "tl" and name.startswith("fit_")]


@pytest.mark.parametrize(("name", "func"), FITS, ids=[n for n, _ in FITS])
def test_misspelled_fit_keyword_is_refused(name, func):
    """A keyword outside the fit contract raises the TypeError Python would, naming the valid."""
    required = {
        p.name: None
        for p in inspect.signature(func).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    }
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['trian'\].* train,"):
        func(None, "rna", "prot", trian=None, **required)


# Parameters whose string default names something in the data (a key, a column, a modality),
# not one of a fixed set of options: these stay `str`.
FREE_FORM_STRINGS = {"key_added", "batch_key", "groupby", "key", "layer", "rna", "atac", "value"}
TYPED = [
    (ns, name, getattr(getattr(scmm, ns), name))
    for ns in ("pp", "pl", "metrics", "datasets")
    for name in getattr(scmm, ns).__all__
    if inspect.isfunction(getattr(getattr(scmm, ns), name))
]


@pytest.mark.parametrize(("ns", "name", "func"), TYPED, ids=[f"{n}.{f}" for n, f, _ in TYPED])
def test_string_options_are_literal(ns, name, func):
    """A string option with a fixed set of values is typed as a `Literal` of them."""
    for p in inspect.signature(func).parameters.values():
        ann = (
            p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        )
        if isinstance(p.default, str) and ann in ("str", "str | None"):
            assert p.name in FREE_FORM_STRINGS, (
                f"{ns}.{name}: `{p.name}: {ann} = {p.default!r}` looks like an option; type it as "
                "a Literal of its values (or add it to FREE_FORM_STRINGS if it names data)"
            )


@pytest.mark.parametrize(("ns", "name", "func"), PUBLIC, ids=[f"{n}.{f}" for n, f, _ in PUBLIC])
def test_rng_is_typed(ns, name, func):
    """Every public ``rng`` takes a seed or a Generator, and says so in its type."""
    p = inspect.signature(func).parameters.get("rng")
    if ns == "tl" and name.startswith("fit_"):
        p = keyword_parameters(func)["rng"]  # in `**contract`
    if p is None:
        return
    assert str(p.annotation) == "SeedLike | np.random.Generator | None", f"{ns}.{name}"
