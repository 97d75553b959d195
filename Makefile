# dunghan: the two commands that matter are `make run` and `make test`.
# Both set everything up on a fresh clone (a .venv with the project installed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint bench clean install

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@mkdir -p var
	@echo "Installing dunghan and its dependencies into $(VENV) (log: var/install.log)…"
	@$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]' > var/install.log 2>&1 \
		|| (tail -n 30 var/install.log; exit 1)
	@touch $(STAMP)

install: $(STAMP)

# The main job on embedded defaults (SQLite in var/, mail as .eml files in var/outbox/):
# the 2025 plan of Nghệ An unfolds day by day, with a sample of one-stop dossiers.
run: $(STAMP)
	@$(BIN)/dunghan procedures import plans/sample-procedures.csv
	@$(BIN)/dunghan dossiers sample --count 20000 --output var/sample-dossiers.csv
	@$(BIN)/dunghan dossiers import var/sample-dossiers.csv
	@$(BIN)/dunghan simulate --from 2025-02-24 --to 2025-12-31 --deliver

# Prefect's server and UI on http://127.0.0.1:4200 (its data in var/prefect) serving every
# deployment of prefect.yaml on the embedded defaults; Ctrl-C stops both (docs/operators.md).
serve: $(STAMP)
	@$(BIN)/dunghan serve --local

test: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/python -m pytest

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

bench: $(STAMP)
	@$(BIN)/python bench/calendar.py
	@$(BIN)/python bench/email.py
	@$(BIN)/python bench/dossiers.py
	@$(BIN)/python bench/serve.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
