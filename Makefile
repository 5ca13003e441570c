# Set-up and entry points for machines without a ROS install. Each target builds .venv first if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.srdb-installed

.PHONY: env demo test test-fast bench gpu-data clean

GPU_SPLITS := eo_train ir_train_gpu eo_val ir_val
DATA_ROOT ?= ../shared/data

$(STAMP): requirements.txt setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/srdb demo

test: $(STAMP)
	$(PY) -m pytest -q test

# No subprocess, no ROS graph, no training: under 2 minutes on 2 cores.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not (ros or slow or cuda or launch)" test

bench: $(STAMP)
	$(VENV)/bin/srdb bench

# The training frames config/train_gpu.yaml names, copied from ../shared/data into .data/gpu/ (git-ignored),
# so that a GPU machine that receives only the checkout has them.
gpu-data:
	@for s in $(GPU_SPLITS); do \
		mkdir -p .data/gpu/$$s; \
		grep -v '^#' config/splits/$$s.txt | sed 's#^#$(DATA_ROOT)/#' | xargs -I{} cp {} .data/gpu/$$s/; \
	done
	@du -sh .data/gpu

clean:
	rm -rf $(VENV) build install log .pytest_cache
