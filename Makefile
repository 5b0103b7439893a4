# Two commands do all set-up on a fresh machine:
#   make demo   install, train a supernet on MNIST-1D, evaluate largest/smallest, export one
#   make test   install, run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: install demo test bench clean

$(BIN)/supernet: setup.cfg pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	PIP_CONSTRAINT=constraints.txt $(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/supernet

install: $(BIN)/supernet

demo: install
	$(BIN)/supernet train --out $(RUN) --overwrite --threads 2
	$(BIN)/supernet eval $(RUN) --arch largest --arch smallest --split test | tee $(RUN)/eval.jsonl
	$(BIN)/supernet export $(RUN) --arch smallest --out $(RUN)/export-smallest --overwrite

test: install
	$(BIN)/python -m pytest tests

bench: install
	$(BIN)/python scripts/bench_elastic.py

clean:
	rm -rf $(VENV) runs *.egg-info
