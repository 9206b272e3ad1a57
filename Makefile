# Two commands do all the set-up: `make train` and `make test` create .venv on first use.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install train test test-fast notebooks strip-notebooks benchmark dashboard lint docs docs-serve clean

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev tools

train: $(STAMP) ## train the default GAN (seed 001's DCGAN); pass overrides as ARGS="model=mlp ..."
	$(PYTHON) -m gan_lightning.train $(ARGS)

# pytest-xdist: one worker per core (conftest.py splits torch's threads among them);
# TEST_WORKERS=0 runs everything in this one process (pdb, print debugging).
TEST_WORKERS ?= auto

test: $(STAMP) ## the whole test suite, the real-data tests included when the data is there
	$(PYTHON) -m pytest -n $(TEST_WORKERS) $(ARGS)

test-fast: $(STAMP) ## skip the slow real-data tests
	$(PYTHON) -m pytest -n $(TEST_WORKERS) -m "not slow" $(ARGS)

notebooks: $(STAMP) ## open notebooks/ in JupyterLab (dev installs the notebooks extra)
	$(VENV)/bin/jupyter lab notebooks/

strip-notebooks: $(STAMP) ## before committing: drop outputs, counts, timings and widget state
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace \
		--ClearMetadataPreprocessor.enabled=True \
		--ClearMetadataPreprocessor.preserve_nb_metadata_mask=kernelspec \
		--ClearMetadataPreprocessor.preserve_nb_metadata_mask=language_info notebooks/*.ipynb

benchmark: $(STAMP) ## framework vs plain PyTorch vs seed-style training throughput
	$(PYTHON) benchmarks/throughput.py $(ARGS)

# An Optuna search in the browser (docs/sweeps.md): `make dashboard STUDY=mlp` for
# outputs/gan/search/mlp/, or `make dashboard STORAGE=<journal file or database URL>`.
STUDY ?= dcgan
STORAGE ?= outputs/gan/search/$(STUDY)/optuna.journal
dashboard: $(STAMP) ## optuna-dashboard on a search's study, at http://127.0.0.1:8080
	$(VENV)/bin/optuna-dashboard $(STORAGE)

# NO_MKDOCS_2_WARNING: mkdocs-material prints its end-of-life notice on every build otherwise
# (noted in pyproject.toml's docs extra).
docs: $(STAMP) ## build the documentation site into site/ (strict: any warning fails it)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP) ## preview the documentation at http://127.0.0.1:8000, rebuilt on every save
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
