# The two quick-start commands of the course (see README.md):
#   make lab    set up .venv and open the notebooks in JupyterLab
#   make test   set up .venv and run the unit tests and every notebook (nbval)
# and for contributors:
#   make site   build the course's website into _build/html, every notebook executed (site/_config.yml)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup lab test site clean

$(BIN)/.gradcourse-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,test,browser,site]"
	touch $@

setup: $(BIN)/.gradcourse-installed

# Jupyter refuses to start as root (containers, some cloud machines) unless told it may.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/00_start_here.ipynb

test: setup
	$(BIN)/python -m pytest

# Jupyter Book 1; -W: a warning fails the build. Executed notebooks are cached in _build/.jupyter_cache,
# so a rebuild reruns only the notebooks whose code changed.
site: setup
	$(BIN)/jupyter-book build . --config site/_config.yml --toc site/_toc.yml -W

clean:
	rm -rf $(VENV) *.egg-info _build
