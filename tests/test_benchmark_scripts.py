"""The benchmark scripts read the package's tasks and models: they start and print their help."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


SCRIPTS = ["accuracy.py", "peers.py", "transfer.py", "ensemble_members.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_starts(script):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_benchmark_methods_are_the_registry_s_and_the_ensemble():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _methods import METHODS
    finally:
        sys.path.remove(str(BENCHMARKS))
    from scmm._registry import MODELS

    assert list(METHODS) == [*MODELS, "ensemble"]
