# Two commands do all set-up on a fresh machine:
#   make demo   install, train a supernet on MNIST-1D, evaluate largest/smallest, export one
#   make test   install, run the test suite (make test-fast: the fast lane, tests not marked slow)
#   make check-readme / make readme-figures   check / re-measure the README's figures
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: install demo test test-fast bench clean check-readme readme-figures readme-spread demo-search llm-demo

$(BIN)/supernet: setup.cfg pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	PIP_CONSTRAINT=constraints.txt $(BIN)/pip install -q -e '.[test,openvino,executorch]'
	# OFA's own package, only for the tests that check imported OFA supernets against it (never at run time;
	# --no-deps: it would pull torchvision, which tests/support/ofa_stub.py stands in for at import)
	$(BIN)/pip install -q --no-deps ofa==0.1.0.post202307202001
	touch $(BIN)/supernet

install: $(BIN)/supernet

demo: install
	$(BIN)/supernet train --out $(RUN) --overwrite --threads 2
	$(BIN)/supernet eval $(RUN) --arch largest --arch smallest --split test | tee $(RUN)/eval.jsonl
	$(BIN)/supernet export $(RUN) --arch smallest --out $(RUN)-export-smallest --overwrite

# the README's second example: search the demo supernet under 1.5 M MACs, export the pick
demo-search: install
	$(BIN)/supernet search $(RUN) --objectives accuracy,flops --max-flops 1.5M --evaluations 100 \
		--out $(RUN)-search --overwrite --threads 1
	$(BIN)/supernet export --from-search $(RUN)-search --pick max-accuracy-under-budget --out $(RUN)-export \
		--overwrite

# LoRA-NAS on a small Llama pre-trained on the stdlib's code, adapted to its English docs (~9 min, 2 cores)
llm-demo: install
	$(BIN)/python -m benchmarks.bench_llm --out runs/llm-demo

# README figures: check them (CI, < 1 min), or re-measure them all on this commit (~8 min)
check-readme: install
	$(BIN)/python -m benchmarks.readme_figures check

# the demo's accuracy range over CPU kernels (avx2, default) and seeds 1, 2 (~15-25 min, 2 cores)
readme-spread: install
	$(BIN)/python -m benchmarks.readme_figures spread --out runs/readme-spread

readme-figures: demo demo-search
	$(BIN)/python -m benchmarks.readme_figures update --demo-run $(RUN) --search-run $(RUN)-search \
		--search-export $(RUN)-export

# one pytest worker per core (at most 4), each test file on one worker (its module fixtures built once);
# PYTEST_WORKERS=0 runs everything in this process
PYTEST_WORKERS ?= auto
XDIST = -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile

test: install
	$(BIN)/python -m pytest tests $(XDIST)

# the fast lane: every test not marked slow (under 2 minutes on 2 cores)
test-fast: install
	$(BIN)/python -m pytest tests -m "not slow" $(XDIST)

bench: install
	$(BIN)/python -m benchmarks.bench_elastic

clean:
	rm -rf $(VENV) runs *.egg-info
