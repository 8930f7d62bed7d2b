# The two set-up commands of the README:
#   make demo   installs into .venv and runs the whole flow end to end on the embedded store
#   make test   installs into .venv and runs the linters and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	@echo "make: installing mug-unilabels and its dependencies (torch among them) into $(VENV):"
	@echo "      a few minutes on a fresh machine, quiet meanwhile; later runs skip this step"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)
	@echo "make: installed into $(VENV)"

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -p no:cacheprovider --timeout=900

clean:
	rm -rf $(VENV) runs out
