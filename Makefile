# The two commands of the README: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.scmm-installed

# Real data: use ../shared/data when it exists and SCMM_DATA_DIR is not set.
ifneq ($(wildcard ../shared/data/README.md),)
export SCMM_DATA_DIR ?= $(abspath ../shared/data)
endif
export MPLBACKEND ?= Agg

.PHONY: demo test docs lint format benchmark sparselinear clean

# torch 2.13.0 first: a CPU build from local disk where available, so pip never pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/scmm demo

test: $(STAMP)
	$(BIN)/python -m pytest

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

lint: $(STAMP)
	$(BIN)/ruff check scmm tests benchmarks
	$(BIN)/ruff format --check scmm tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format scmm tests benchmarks
	$(BIN)/ruff check --fix scmm tests benchmarks

benchmark: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py

# The optional sparselinear backend of scmm.nn.SparseLinear. Its dependencies torch-scatter and
# torch-sparse have no wheels for current torch, so pip compiles them from source against the
# installed torch (about 18 min on 2 cores; needs a C++ compiler). Another venv: `make
# sparselinear VENV=/path/to/venv`. Then run tests/test_sparse_linear.py and
# benchmarks/sparse_layer.py (docs/models/pathway_mlp.md has the table).
sparselinear: $(STAMP)
	$(BIN)/python -m pip install --quiet setuptools wheel
	$(BIN)/python -m pip install --no-build-isolation "torch-scatter>=2.1.2"
	$(BIN)/python -m pip install --no-build-isolation "torch-sparse>=0.6.18"
	$(BIN)/python -m pip install --no-build-isolation "sparselinear>=0.0.5"
	$(BIN)/python -c "import sparselinear, torch_sparse; print('sparselinear', sparselinear.__file__)"

clean:
	rm -rf $(VENV) docs/_build .pytest_cache
