# The README's commands. Each one sets up what it needs on a fresh machine that has only Python.
#   make test                 create .venv (first run), then run the test suite (two processes at a time)
#   make test TEST_JOBS=4     four test processes (auto: one per core); TEST_JOBS=1 runs them in this process
#   make book                 create .venv (first run), execute every chapter (cpu profile), build _build/html
#                             with every chapter as a notebook and the package's wheel in _build/html/notebooks
#   make book PROFILE=gpu     the same with the full reproduction profile
#   make book JOBS=1          one chapter at a time (default: two at a time, except under gpu)
#   PGSOUND_PRETRAINED=1 make book   the same, loading the shipped runs instead of training (its own cache)
#   make book-check           build the book under the smoke profile; check every chapter page in a browser
#   make slides               one reveal.js deck per chapter in _build/slides (PROFILE as make book; NAME=07 picks)
#   make chapter NAME=07      execute the chapters whose file names contain 07 (PROFILE=cpu), print wall times
#   make clean                remove builds (keeps .venv); make distclean also removes .venv
PYTHON  ?= python3
VENV    ?= .venv
# torch from the package index: on Linux x86-64 that is the CUDA build (gigabytes), on macOS the one with MPS (the
# Apple GPU), on Windows the CPU build. The CPU build on Linux: make TORCH_ARGS='--index-url
# https://download.pytorch.org/whl/cpu'. A .venv created with torch already in it keeps that torch.
TORCH      ?= torch==2.13.0
TORCH_ARGS ?=
# Which torch build set-up installed: its version and the GPU backend built into it.
TORCH_BUILD := import torch; cuda = torch.version.cuda; mps = torch.backends.mps.is_built(); \
	print("torch", torch.__version__ + ":", f"the CUDA {cuda} build" if cuda else "the build with MPS (Apple GPU)" \
	if mps else "the CPU build (no CUDA, no MPS)")
PROFILE ?= cpu
# Chapters executed at a time by make book, each kernel with its share of the cores (one GPU runs one at a time).
JOBS    ?= $(if $(filter gpu,$(PROFILE)),1,2)
# Test processes at a time (pytest-xdist); conftest.py gives each its share of the cores.
TEST_JOBS ?= 2
PY      := $(VENV)/bin/python
# One execution cache per profile and per PGSOUND_PRETRAINED (the cache knows neither variable).
CACHE   := _build/.jupyter_cache-$(PROFILE)$(if $(filter 1 true yes TRUE YES True Yes,$(PGSOUND_PRETRAINED)),-pretrained)
STAMP   := $(VENV)/.pgsound-installed

.PHONY: test book book-check slides chapter lint clean distclean venv

venv: $(STAMP)

# The stamp depends on pyproject.toml: a second run skips set-up unless the dependencies changed.
$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "==> torch $$($(PY) -c 'import torch; print(torch.__version__)') already installed, keeping it"; \
	else \
		echo "==> installing $(TORCH) (a few minutes the first time)"; \
		$(PY) -m pip install $(TORCH_ARGS) "$(TORCH)"; \
	fi
	@echo "==> installing pgsound with extras book, test, dev"
	@$(PY) -m pip install -e '.[book,test,dev]'
	@$(PY) book/setup_jupyter.py
	@touch $(STAMP)
	@echo "==> set-up done: $(VENV) with $$($(PY) -c '$(TORCH_BUILD)')"

test: $(STAMP)
	@echo "==> running the test suite (unit tests, then every chapter under PGSOUND_PROFILE=smoke)"
	$(PY) -m pytest -v --durations=15 $(if $(filter 1,$(TEST_JOBS)),-p no:xdist,-n $(TEST_JOBS) --dist worksteal)

lint: $(STAMP)
	$(VENV)/bin/ruff check pgsound tests benchmarks

book: $(STAMP)
	@echo "==> executing every chapter under PGSOUND_PROFILE=$(PROFILE) and building _build/html"
	@rm -rf _build/html/reports
	@mkdir -p $(CACHE) && rm -rf _build/.jupyter_cache && ln -s $(notdir $(CACHE)) _build/.jupyter_cache
	@# Our runner executes the chapters (it avoids an nbclient stall, see book/run_chapter.py) and fills the cache;
	@# jupyter-book then finds every chapter there and only renders.
	PGSOUND_PROFILE=$(PROFILE) $(PY) book/run_chapter.py --cache $(CACHE) --jobs $(JOBS)
	PGSOUND_PROFILE=$(PROFILE) $(VENV)/bin/jupyter-book build . --all --path-output . --builder html
	@if [ -d _build/html/reports ] && [ -n "$$(find _build/html/reports -name '*.log')" ]; then \
		echo "==> a chapter raised; its traceback:"; find _build/html/reports -name '*.log' -exec cat {} +; exit 1; \
	fi
	@echo "==> book written to _build/html/index.html"

# The smoke book, built and then checked page by page: its HTML (book/check_html.py), then its controls and
# audio players in headless Chromium (book/check_controls.py); then one notebook to take away, run in a fresh
# environment whose first cell installs the wheel beside it (book/notebooks.py); then its slides, a deck per
# chapter whose assets resolve. What CI runs after the tests.
book-check: $(STAMP)
	$(MAKE) book PROFILE=smoke
	$(PY) book/check_html.py _build/html
	$(PY) book/check_controls.py _build/html/book/[0-9][0-9]_*.html
	$(PY) book/notebooks.py check _build/html/notebooks/01_sound_as_pictures.ipynb
	$(MAKE) slides PROFILE=smoke
	$(PY) book/make_slides.py --check

# The decks are made from the chapters' tagged cells and the outputs make book stored in $(CACHE); a chapter not
# there is executed first (and stored, so make book reuses it).
slides: $(STAMP)
	@mkdir -p $(CACHE)
	PGSOUND_PROFILE=$(PROFILE) $(PY) book/make_slides.py "$(NAME)" --cache $(CACHE) --jobs $(JOBS)

chapter: $(STAMP)
	PGSOUND_PROFILE=$(PROFILE) $(PY) book/run_chapter.py "$(NAME)"

clean:
	rm -rf _build .pytest_cache .ruff_cache runs-smoke
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
