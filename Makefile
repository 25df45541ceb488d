# The README's two commands: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
export HF_HUB_OFFLINE = 1

.PHONY: setup demo test bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch + torchvision first, as a matched pair (an unpinned torchvision breaks timm/transformers)
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	# the rest within constraints.txt's known-good versions (a free resolve backtracks for minutes)
	$(BIN)/python -m pip install -q -e '.[test]' -c constraints.txt
	touch $@

setup: $(BIN)/.installed

demo: setup  ## score the default model on the built-in synthetic data
	$(BIN)/bench run

test: setup  ## the test suite, then a quick pass over the benchmarks
	$(BIN)/pytest
	$(BIN)/pytest benchmarks --benchmark-disable -q

bench: setup  ## full-size benchmarks (minutes)
	$(BIN)/pytest benchmarks --benchmark-only

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks
