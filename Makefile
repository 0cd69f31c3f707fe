# The two quick-start commands of the course (see README.md):
#   make lab    set up .venv and open the notebooks in JupyterLab
#   make test   set up .venv and run the unit tests and every notebook (nbval)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup lab test clean

$(BIN)/.gradcourse-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,test,browser]"
	touch $@

setup: $(BIN)/.gradcourse-installed

# Jupyter refuses to start as root (containers, some cloud machines) unless told it may.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/00_start_here.ipynb

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) *.egg-info
