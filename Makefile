# Two commands on a fresh machine with Python >= 3.10:  make demo   and   make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
GTNNAS := $(VENV)/bin/gtnnas
PYTEST_ARGS ?=

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The main job on the embedded local Ray (Fashion-MNIST; fetched through torchvision if missing).
demo: install
	$(GTNNAS) data fetch fashion_mnist --if-missing
	$(GTNNAS) search --config configs/default.yaml $(ARGS)

# The default suite, then the multi-node fault tests in their own pytest process (own Ray clusters).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)
	$(PY) -m pytest -m multinode $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/search_overhead.py
	$(PY) benchmarks/gtn_few_step.py
	$(PY) benchmarks/leaderboard_speed.py
	$(PY) benchmarks/nb201_proxies.py

clean:
	rm -rf $(VENV) *.egg-info
