# Two entry points a newcomer needs: `make run` (the app) and `make test`.
# Each bootstraps .venv on first use. Torch is large: a compatible one that the
# system Python can already import is reused (system site packages) rather than
# installed again; otherwise TORCH is installed (the CPU wheel on these machines).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench venv clean

run: $(STAMP)
	$(BIN)/charlm

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.train_speed

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache
