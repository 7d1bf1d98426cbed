"""Sphinx configuration of the scmm documentation (``make docs``).

Decisions worth knowing before changing this file:

- **Offline by default, intersphinx opt-in.** CI builds with ``-W`` on a machine without
  network access (PyPI only). ``sphinx.ext.intersphinx`` logs a plain, un-suppressible warning
  when it cannot download an inventory, so an always-on mapping would fail every offline build.
  The mapping below is therefore only used when ``SCMM_DOCS_INTERSPHINX=1`` (an online build,
  e.g. Read the Docs): references to numpy, anndata, mudata, ... then become links. In both
  modes, unresolved references to those *external* packages are ignored by
  ``nitpick_ignore_regex`` (they cannot be checked offline), while every reference into
  ``scmm`` itself is still checked by ``nitpicky = True``.
- **Tutorials need the real data.** They are executed at build time (myst-nb, ``cache`` mode,
  600 s per notebook) when ``SCMM_DATA_DIR`` points to a folder holding the data files (the
  Makefile sets it to ``../shared/data`` when that exists). Without it, the notebooks are
  rendered unexecuted (code only, no outputs) and the build still succeeds.
  ``SCMM_DOCS_EXECUTE=off|cache|force|auto`` overrides the choice.
- **No deprecation flood.** sphinx-autodoc-typehints 3.6 calls a Sphinx API that Sphinx 9
  deprecates, once per documented object (176 ``RemovedInSphinx10Warning`` lines per build).
  They are Python warnings about that package's code, not about these docs, and ``-W`` does not
  see them; the filter below silences exactly those (category and module), nothing of scmm's.
- **API pages follow ``__all__``.** ``api.md`` lists the namespaces; the autosummary templates
  in ``_templates/autosummary`` list every name in each namespace's ``__all__``, so a new public
  function gets its page without editing the docs. Generated pages go to ``docs/generated``.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from datetime import date
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version
from pathlib import Path

import sphinx.deprecation

_TYPEHINTS_DEPRECATION = getattr(sphinx.deprecation, "RemovedInSphinx10Warning", None)
if _TYPEHINTS_DEPRECATION is not None:  # Sphinx 9; gone with the API in Sphinx 10
    warnings.filterwarnings(
        "ignore", category=_TYPEHINTS_DEPRECATION, module=r"sphinx_autodoc_typehints(\.|$)"
    )

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # import scmm from the source tree if not installed

os.environ.setdefault("MPLBACKEND", "Agg")

project = "scmm"
author = "the scmm authors"
copyright = f"{date.today().year}, {author}"
try:
    release = _package_version("scmm")
except PackageNotFoundError:  # pragma: no cover
    release = "0.0.0"
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # must come before sphinx_autodoc_typehints
    "sphinx_autodoc_typehints",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

templates_path = ["_templates"]
# results_table.md and peers_table.md are included by results.md, not pages of their own
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    "jupyter_execute",
    "results_table.md",
    "peers_table.md",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
nitpicky = True
default_role = "literal"  # `x` in docstrings is code, not a cross-reference

# -- autodoc / autosummary / napoleon / typehints ------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True  # public functions live in private modules (scmm.tl._x)
autosummary_ignore_module_all = False  # document exactly each namespace's __all__
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # never pull torch/lightning docstrings into our pages
autodoc_typehints = "description"  # sphinx_autodoc_typehints moves hints into the params
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False  # the return type comes from the signature (typehints)
napoleon_use_param = True
# scmm's "Returns" sections are prose plus a definition list of the fields written
# ("``mdata.uns[key]`` : dict" + description; types live in the signature). Napoleon's returns
# parser would turn that into a garbled bullet list, so "Returns" is rendered as a generic
# section (a rubric and the text as written); the return type comes from the signature.
napoleon_custom_sections = ["Returns"]
typehints_document_rtype = True
typehints_use_rtype = False  # put the return type into the "Returns" field
always_document_param_types = True
typehints_defaults = "comma"
typehints_fully_qualified = False
python_use_unqualified_type_names = True

# -- intersphinx: only with SCMM_DOCS_INTERSPHINX=1 (see the module docstring) -------------------
_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "mudata": ("https://mudata.readthedocs.io/en/latest/", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
    "muon": ("https://muon.readthedocs.io/en/latest/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "pandas": ("https://pandas.pydata.org/pandas-docs/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
    "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
}
intersphinx_mapping = _INTERSPHINX if os.environ.get("SCMM_DOCS_INTERSPHINX") == "1" else {}
intersphinx_timeout = 10

# External names cannot be resolved offline: ignore them (and only them) under nitpicky.
_EXTERNAL = (
    r"(anndata|ad|mudata|md|scanpy|sc|muon|mu|torch|nn|numpy|np|scipy|sp|sparse|pandas|pd|"
    r"sklearn|matplotlib|mpl|plt|lightning|pyranges|pr|safetensors|pooch|tqdm|pathlib|os|typing|"
    r"collections|numbers|datetime)(\..+)?"
)
_BUILTIN = (
    r"(int|float|str|bool|bytes|dict|list|tuple|set|frozenset|object|type|None|NoneType|"
    r"Any|Callable|Iterable|Iterator|Mapping|Sequence|Literal|Union|Optional|PathLike|Path|"
    r"ndarray|DataFrame|Series|Index|AnnData|MuData|Figure|Axes|Generator|Tensor|Module|"
    r"spmatrix|csr_matrix|sparray|ArrayLike|Self|ClassVar|Exception|ValueError|KeyError|"
    r"TypeError|RuntimeError|FileExistsError|ImportError|Ellipsis)"
)
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL),
    (r"py:.*", _BUILTIN),
    # private names (``_fit``, ``scmm.x._module.NAME``) are deliberately left undocumented
    (r"py:.*", r"(.*\.)?_[^.]*"),
    (r"py:.*", r"scmm(\.\w+)*\._\w+(\.\w+)*"),
]

# -- myst / myst-nb -------------------------------------------------------------------------------
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath", "substitution"]
myst_heading_anchors = 3
myst_dmath_double_inline = True


def _execution_mode() -> str:
    forced = os.environ.get("SCMM_DOCS_EXECUTE")
    if forced:
        return forced
    data_dir = os.environ.get("SCMM_DATA_DIR")
    if data_dir and (Path(data_dir) / "cite" / "bmmc_cite_starter_rna.h5ad").is_file():
        return "cache"
    return "off"


nb_execution_mode = _execution_mode()
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing tutorial fails the build
nb_execution_show_tb = True
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_merge_streams = True
myst_substitutions = {
    "executed": (
        "This page was executed during the documentation build on the real data."
        if nb_execution_mode != "off"
        else "**This build did not execute the tutorials** (no data folder: set "
        "`SCMM_DATA_DIR`); the code cells are shown without their outputs."
    ),
}

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "scmm"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path = ["_static"]
html_css_files = ["scmm.css"]  # long code lines wrap (see the file)
suppress_warnings = [
    "mystnb.unknown_mime_type",  # e.g. widget outputs of progress bars
]
if nb_execution_mode == "off":  # unexecuted tutorials have no glued numbers to fill in
    suppress_warnings.append("mystnb.glue")


# -- public names for objects defined in private modules ------------------------------------------
# Type hints name the defining module (``scmm.train._config.TrainingConfig``); the documented name
# is the public one (``scmm.train.TrainingConfig``). Resolve the former to the latter.
def _resolve_private_module(app, env, node, contnode):
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("scmm.") or "._" not in target:
        return None
    parts = target.split(".")
    public = ".".join(p for p in parts[:-1] if not p.startswith("_")) + "." + parts[-1]
    if public == target:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
    )


def _undo_returns_colon(app, what, name, obj, options, lines):
    """Drop the ``:`` sphinx-autodoc-typehints puts under numpy "Returns" headers.

    It tells napoleon's returns parser not to read a type; scmm renders "Returns" as a generic
    section (see ``napoleon_custom_sections``), where the ``:`` would be printed.
    """
    for i in range(len(lines) - 2):
        if lines[i].strip() == "Returns" and set(lines[i + 1].strip()) == {"-"}:
            if lines[i + 2] == ":":
                del lines[i + 2]
            return


def _drop_type_docstring(app, what, name, obj, options, lines):
    """Constants without a docstring of their own must not show their type's (``dict``'s)."""
    if what in ("data", "attribute") and not isinstance(obj, type) and lines:
        own = (type(obj).__doc__ or "").strip()
        if own and "\n".join(lines).strip() == inspect.cleandoc(own):
            lines[:] = []


def setup(app):
    app.connect("autodoc-process-docstring", _drop_type_docstring)
    app.connect("missing-reference", _resolve_private_module)
    # priority 499 like sphinx-autodoc-typehints' handler (registered before this one), so this
    # runs after it and before napoleon (500)
    app.connect("autodoc-process-docstring", _undo_returns_colon, priority=499)
