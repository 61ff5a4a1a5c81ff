# Two commands do everything on a fresh clone:
#   make course   set up .venv, then run every chapter on the embedded mini-wiki data
#   make test     set up .venv, then unit tests, pytest --nbval over notebooks/, and the browser test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Pinned here (not in pyproject) so Colab keeps its own preinstalled torch.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# Free disk a fresh set-up needs: these pins are 6.4 GiB in .venv (CUDA libraries), plus ~0.7 GiB of course data.
SETUP_NEEDS_GIB ?= 7
COURSE_HOME ?= $(CURDIR)/.course_data/course
TEST_HOME ?= $(CURDIR)/.course_data/test
export PYTHONUNBUFFERED := 1

.PHONY: setup course test unit nbval browser lab benchmarks clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PY) -c 'import torch' 2>/dev/null || $(PYTHON) scripts/check_disk_space.py $(CURDIR) --need-gib $(SETUP_NEEDS_GIB)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Each run starts from an empty course home, as the nbval run does, so the
# notebooks' outputs are the same on every run and can be committed.
course: setup
	$(PY) scripts/run_course.py --home $(COURSE_HOME)

unit: setup
	FACE_AGING_HOME=$(TEST_HOME)/unit $(PY) -m pytest tests -m "not browser" -q

# The options live in pyproject.toml, so `pytest --nbval notebooks/` typed by hand does the same.
# The chapters run under CPU kernels other than those `make course` used for the committed
# outputs (scripts/other_kernels.py): a machine-dependent digit in a compared cell fails here.
# It sets ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 on AVX-512 machines, ATEN_CPU_CAPABILITY=default
# on AVX2 machines, and default/SSE41 elsewhere.
NBVAL_KERNELS ?= $(shell test -x $(PY) && $(PY) scripts/other_kernels.py)
nbval: setup
	rm -rf $(TEST_HOME)/nbval
	@test -n "$(NBVAL_KERNELS)" || { echo "scripts/other_kernels.py printed nothing"; exit 1; }
	@echo "nbval kernels: $(NBVAL_KERNELS)"
	env $(NBVAL_KERNELS) FACE_AGING_HOME=$(TEST_HOME)/nbval $(PY) -m pytest --nbval -q notebooks

# Chapter 5 in JupyterLab + headless Chromium, on a copy of the course home the nbval run
# left (no retraining); tests/test_standalone.py proves a chapter also runs on an empty home.
browser: setup
	bash scripts/ensure_chromium.sh
	FACE_AGING_BROWSER_HOME=$(TEST_HOME)/nbval $(PY) -m pytest tests -m browser -q

test: setup
	$(MAKE) unit
	$(MAKE) nbval
	$(MAKE) browser

lab: setup
	$(VENV)/bin/jupyter lab notebooks

benchmarks: setup
	$(PY) benchmarks/preprocess.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/slider_latency.py

clean:
	rm -rf .course_data test-artifacts
