# The README's two commands: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
# brainbench's torch pair; THINGSvision's environment (thingsvision-env) installs the same one
TORCH = torch==2.14.1 torchvision==0.29.1
TV_VENV ?= .venv-thingsvision
TV_BIN = $(TV_VENV)/bin
export HF_HUB_OFFLINE = 1

.PHONY: setup demo test bench clean thingsvision-env

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch + torchvision first, as a matched pair (an unpinned torchvision breaks timm/transformers)
	$(BIN)/python -m pip install -q $(TORCH)
	# the rest within constraints.txt's known-good versions (a free resolve backtracks for minutes)
	$(BIN)/python -m pip install -q -e '.[test]' -c constraints.txt
	touch $@

setup: $(BIN)/.installed

demo: setup  ## score the default model on the built-in synthetic data
	$(BIN)/bench run

test: setup  ## the test suite, then a quick pass over the benchmarks
	$(BIN)/pytest
	$(BIN)/pytest benchmarks --benchmark-disable -q

bench: setup  ## full-size benchmarks (about 45 minutes on 2 CPUs); with THINGSvision's env built, the comparison too
	BRAINBENCH_THINGSVISION_PYTHON=$(if $(wildcard $(TV_BIN)/python),$(abspath $(TV_BIN))/python,) \
	  $(BIN)/pytest benchmarks --benchmark-only -p no:cacheprovider

# THINGSvision 2.7.3 in its own environment, for benchmarks/test_against_thingsvision.py (never in .venv):
# brainbench's torch pair and transformers, THINGSvision's import-time dependencies (tensorflow-cpu 2.15),
# and thingsvision itself without its pins (see benchmarks/thingsvision-requirements.txt). About 5 GB.
$(TV_BIN)/.installed: benchmarks/thingsvision-requirements.txt
	$(PYTHON) -m venv $(TV_VENV)
	$(TV_BIN)/python -m pip install -q $(TORCH)
	$(TV_BIN)/python -m pip install -q -r benchmarks/thingsvision-requirements.txt
	$(TV_BIN)/python -m pip install -q --no-deps thingsvision==2.7.3
	$(TV_BIN)/python -c "import thingsvision, thingsvision.utils.data, torch, transformers; from transformers import DINOv3ViTModel; print('thingsvision', thingsvision.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
	touch $@

thingsvision-env: $(TV_BIN)/.installed  ## THINGSvision's environment for the comparison benchmark
	@echo "BRAINBENCH_THINGSVISION_PYTHON=$(abspath $(TV_BIN))/python"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .benchmarks
