"""The model table of ``scmm._registry`` agrees with the classes and the fit functions."""

import inspect

import pytest

import scmm
from scmm._registry import MODELS, ensemble_members
from scmm.models import BaseModel
from scmm.tl import keyword_parameters

#: Model classes that are no model of their own (a base, or the stack of other models).
NOT_LISTED = {"BaseModel", "NeuralModel", "EnsembleModel"}


@pytest.mark.parametrize("name", MODELS)
def test_entry_names_a_class_and_its_fit_function(name):
    entry = MODELS[name]
    cls = getattr(scmm.models, entry.model)
    assert issubclass(cls, BaseModel)
    assert entry.fit in scmm.tl.__all__
    keywords = keyword_parameters(getattr(scmm.tl, entry.fit))
    for key in (*entry.fixed, *entry.defaults):
        assert key in keywords, f"{name}: `{key}` is not a keyword of scmm.tl.{entry.fit}"
    # the fit function takes the class's own options under their names and defaults
    own = set(inspect.signature(cls).parameters) - {"training", "method"}
    shared = own & set(keywords)
    assert shared, f"{name}: scmm.tl.{entry.fit} takes none of {entry.model}'s options"
    for option in shared:
        assert keywords[option].default == inspect.signature(cls).parameters[option].default, (
            f"{name}: `{option}` defaults differ between scmm.tl.{entry.fit} and {entry.model}"
        )


def test_every_model_class_is_listed():
    classes = {
        n
        for n in scmm.models.__all__
        if isinstance(getattr(scmm.models, n), type)
        and issubclass(getattr(scmm.models, n), BaseModel)
    }
    assert classes - NOT_LISTED == {entry.model for entry in MODELS.values()}


@pytest.mark.parametrize(
    "argv",
    [["fit", "--method", "no_such_model", "--source", "a", "--target", "b", "--out", "x"],
     ["demo", "--methods", "no_such_model"]],
)  # fmt: skip
def test_the_command_line_reads_the_table(argv, capsys):
    from scmm.cli import main

    assert main(argv) != 0
    assert ", ".join(repr(name) for name in sorted(MODELS)) in capsys.readouterr().err


def test_tasks_name_their_loader_and_the_demo_s_models_apply():
    from scmm.cli._demo import applies_to

    for name, task in scmm.datasets.TASKS.items():
        assert task.dataset in scmm.datasets.__all__, name
        runs = {m for m in MODELS if applies_to(m, task)}
        assert {"mean", "ridge", "mlp"} <= runs
        assert ("pathway_mlp" in runs) == (task.source == "rna" and task.gene_names)
        assert ("deepsets" in runs) == (task.assembly is not None)


def test_load_task_refuses_unknown_names_and_windows_without_peaks():
    with pytest.raises(ValueError, match="not a task; pass one of"):
        scmm.datasets.load_task("no_such_task")
    with pytest.raises(ValueError, match="pass `windows=False`"):
        scmm.datasets.load_task("bmmc_cite", windows=True)


def test_ensemble_members_are_the_registry_s(paired):
    with pytest.raises(ValueError, match="not among") as err:
        scmm.tl.fit_ensemble(paired, "rna", "prot", methods=["no_such_model"])
    assert str(ensemble_members()) in str(err.value)
