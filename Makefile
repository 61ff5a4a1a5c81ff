# Two commands do everything on a fresh clone:
#   make course   set up .venv, then run every chapter on the embedded mini-wiki data
#   make test     set up .venv, then unit tests, the site build, pytest --nbval over notebooks/, and the browser tests
# `make site` builds the course site into _build/html; `make lock` rewrites requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every version installed, torch's included (pyproject's `torch` group), as `make course` ran them.
LOCK := requirements.lock
UV_VERSION := 0.13.9
# Free disk a fresh set-up needs: these pins are 6.4 GiB in .venv (CUDA libraries), plus ~0.7 GiB of course data.
SETUP_NEEDS_GIB ?= 7
COURSE_HOME ?= $(CURDIR)/.course_data/course
TEST_HOME ?= $(CURDIR)/.course_data/test
export PYTHONUNBUFFERED := 1

.PHONY: setup course test unit unit-slow unit-quick nbval browser chromium lab benchmarks clean lock site

setup: $(VENV)/.installed

# uv, from its own small venv, installs into .venv (which keeps its pip): the lock constrains every
# package. It is given the indexes pip is configured with (scripts/uv_index_options.py), since it reads
# no pip configuration, and it compiles the bytecode that pip would.
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
UV_INSTALL = $(UV) pip install --quiet --compile-bytecode $(shell $(PYTHON) scripts/uv_index_options.py)

$(UV):
	test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml $(LOCK) | $(UV)
	@$(PY) -c 'import torch' 2>/dev/null || $(PYTHON) scripts/check_disk_space.py $(CURDIR) --need-gib $(SETUP_NEEDS_GIB)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(UV_INSTALL) --python $(PY) --constraint $(LOCK) --group torch -e '.[dev]'
	touch $@

# The lock for Python 3.11.5 and newer on every platform, one version of each package where it can
# (`fewest`): the course's, the dev tools' and the site's. It needs PyPI.
# `make lock` keeps the versions already locked; `make lock LOCK_OPTIONS=--upgrade` takes the newest.
LOCK_OPTIONS ?=
lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra dev --group torch --group site --universal \
		--fork-strategy fewest --python-version 3.11.5 --custom-compile-command "make lock" $(LOCK_OPTIONS) -o $(LOCK)

# Each run starts from an empty course home, as the nbval run does, so the
# notebooks' outputs are the same on every run and can be committed.
course: setup
	$(PY) scripts/run_course.py --home $(COURSE_HOME)

# Two pytest processes, each in its own course home: the end-to-end tests (marked slow: notebooks
# executed, torchrun, the training script) and the rest, which mostly run Python on one core. With
# `make -j` (as `make test` runs them) they share the two cores.
unit: unit-slow unit-quick

unit-slow: setup
	FACE_AGING_HOME=$(TEST_HOME)/unit-slow $(PY) -m pytest tests -m "slow and not browser" -q

unit-quick: setup
	FACE_AGING_HOME=$(TEST_HOME)/unit $(PY) -m pytest tests -m "not slow and not browser" -q

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
# Also chapter 5's page of the built site (tests/test_site_browser.py): `make site` first.
browser: setup chromium
	FACE_AGING_BROWSER_HOME=$(TEST_HOME)/nbval $(PY) -m pytest tests -m browser -q

chromium:
	bash scripts/ensure_chromium.sh

# The course site (Jupyter Book 1) from the committed notebooks, not re-executed, into _build/html.
# Its own venv from the lock (pyproject's `site` group; no torch). Fails on any Sphinx warning and
# on a broken local link or image (book/build_site.py).
SITE_VENV := .venv-site
site: $(SITE_VENV)/.installed
	$(SITE_VENV)/bin/python book/build_site.py

$(SITE_VENV)/.installed: pyproject.toml $(LOCK) | $(UV)
	test -x $(SITE_VENV)/bin/python || $(PYTHON) -m venv $(SITE_VENV)
	$(UV_INSTALL) --python $(SITE_VENV)/bin/python --constraint $(LOCK) --group site
	touch $@

# The two unit-test processes, the site build and the Chromium check (which mostly wait on the disk and
# the network) run side by side; each one's output is printed whole when it ends.
test: setup
	@echo "unit tests (two processes), site build and Chromium check side by side; each one's output follows when it ends"
	$(MAKE) -j4 --output-sync=target unit-slow unit-quick site chromium
	$(MAKE) nbval
	$(MAKE) browser

lab: setup
	$(VENV)/bin/jupyter lab notebooks

benchmarks: setup
	$(PY) benchmarks/preprocess.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/slider_latency.py
	$(PY) benchmarks/setup_install.py

clean:
	rm -rf .course_data test-artifacts _build
