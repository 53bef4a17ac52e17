# Every target builds its own virtualenv from the pinned constraints in constraints/.
# Needs only Python 3.11+, make and access to PyPI.

PYTHON ?= python3
VENV ?= .venv
VENV_AIRFLOW2 ?= .venv-airflow2
CONSTRAINTS ?= constraints/airflow-3.3.txt
CONSTRAINTS_AIRFLOW2 ?= constraints/airflow-2.11.txt
# The OpenLineage provider is installed next to Airflow 3.3 only, to test the lineage hook.
EXTRAS := dev,openlineage
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: demo test lint typecheck test-airflow3 test-airflow2 venv clean

## demo: run the hourly export example offline against the bundled simulator (only .venv)
demo: $(VENV)/.installed
	$(VENV)/bin/python scripts/demo.py

## test: lint, type check, then every test on Airflow 3.3 and on Airflow 2.11
test: lint typecheck test-airflow3 test-airflow2

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

test-airflow3: $(VENV)/.installed
	AIRFLOW_HOME=$(CURDIR)/.airflow-home/test-airflow3 $(VENV)/bin/pytest $(PYTEST_ARGS)

test-airflow2: $(VENV_AIRFLOW2)/.installed
	AIRFLOW_HOME=$(CURDIR)/.airflow-home/test-airflow2 $(VENV_AIRFLOW2)/bin/pytest $(PYTEST_ARGS)

venv: $(VENV)/.installed

# $(1): virtualenv folder, $(2): constraints file, $(3): extras
define install
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q -c $(2) pip setuptools wheel hatchling editables
	$(1)/bin/python -m pip install -q -c $(2) --no-build-isolation -e '.[$(3)]'
	touch $(1)/.installed
endef

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(call install,$(VENV),$(CONSTRAINTS),$(EXTRAS))

$(VENV_AIRFLOW2)/.installed: pyproject.toml $(CONSTRAINTS_AIRFLOW2)
	$(call install,$(VENV_AIRFLOW2),$(CONSTRAINTS_AIRFLOW2),dev)

clean:
	rm -rf $(VENV) $(VENV_AIRFLOW2) .airflow-home .demo .pytest_cache .mypy_cache .ruff_cache
