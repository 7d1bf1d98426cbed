"""Every docstring example of the public API runs as a doctest (matplotlib Agg, offline)."""

from __future__ import annotations

import doctest
import importlib
import inspect

import matplotlib
import pytest

from .conftest import real_data_dir

matplotlib.use("Agg")

_NAMESPACES = ("pp", "tl", "pl", "metrics", "datasets", "models")
_NEED_EXAMPLES = ("pp", "tl", "pl", "metrics", "datasets")  # functions only
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _public():
    for ns in _NAMESPACES:
        module = importlib.import_module(f"scmm.{ns}")
        for name in module.__all__:
            yield ns, f"scmm.{ns}.{name}", getattr(module, name)


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    out = []
    for ns, qualname, obj in _public():
        for test in finder.find(obj, qualname):
            if test.examples:
                out.append(pytest.param(ns, test, id=test.name))
    return out


@pytest.mark.parametrize(("namespace", "test"), _doctests())
def test_docstring_example(namespace, test):
    import matplotlib.pyplot as plt

    if namespace == "datasets" and real_data_dir() is None:
        pytest.skip("real data not found: set SCMM_DATA_DIR to the shared data folder")
    test.globs = {}  # fresh namespace: every example imports what it uses
    runner = doctest.DocTestRunner(optionflags=_FLAGS)
    report: list[str] = []
    try:
        runner.run(test, out=report.append)
    finally:
        plt.close("all")
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)


def test_every_public_function_has_an_example():
    finder = doctest.DocTestFinder(exclude_empty=True)
    missing = [
        qualname
        for ns, qualname, obj in _public()
        if ns in _NEED_EXAMPLES
        and inspect.isfunction(obj)
        and not any(t.examples for t in finder.find(obj, qualname))
    ]
    assert not missing, f"public functions without an `Examples` section: {missing}"
