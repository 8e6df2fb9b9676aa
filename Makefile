# The two Quick-start commands: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
RUN_DIR ?= runs/compare

.PHONY: setup run test test-slow lint format bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# the official xLSTM (Apache-2.0) for the interop tests and benchmarks: pure Python, and
	# --no-deps skips its GPU kernel packages (seqlab never needs it; its tests skip without it)
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt xlstm packaging
	touch $@

## main job: the quick comparison study on the built-in data (8 architectures x 4 tasks,
## matched parameters and training time; about 6 minutes on 2 cores), report in $(RUN_DIR)/report.html
run: setup
	$(BIN)/seqlab compare --preset quick --out $(RUN_DIR)

## lint + the default test suite (a few minutes on 2 cores)
test: setup
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

format: setup
	$(BIN)/ruff format src tests scripts
	$(BIN)/ruff check --fix src tests scripts

bench: setup
	$(BIN)/python -m seqlab.bench.rnn_speed

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
