"""The import direction of the house style, as the contracts in pyproject.toml write it.

``lint-imports`` (import-linter) checks the layers (cli > pl > tl > models > train > nn >
pp, datasets > metrics > shared helpers), that no package imports another's private modules
and that no modules of a package import each other round a loop; a forbidden arrow fails
``make test`` and CI here.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    pytest_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command as c; c()",
            "--no-cache",
        ],
        cwd=ROOT,
        env=pytest_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_scmm_deprecation_warnings_are_errors():
    """pyproject's filters ignore third-party deprecations, never those scmm's code raises."""
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old", DeprecationWarning, "scmm/tl/_mlp.py", 1, module="scmm.tl")
    warnings.warn_explicit("old", DeprecationWarning, "anndata/_core.py", 1, module="anndata")


def test_markers_are_declared(pytestconfig):
    assert pytestconfig.getoption("strict_markers")
    assert any(m.startswith("slow:") for m in pytestconfig.getini("markers"))
