# The two entry points of the README: `make demo` (main job) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: demo test install bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first, pinned to the local CPU wheel, so nothing pulls a CUDA build.
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: install
	$(PY) -m router.training.demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
