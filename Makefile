# Two commands do everything on a fresh machine:
#   make demo   environment, data (embedded dataset unless CITYSCAPES_DATASET is set), the product
#   make test   environment, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# (Material's banner about its successor, printed at every build, is not one of the build's warnings.)
MKDOCS := NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs
STAMP := $(VENV)/.requirements-installed
EMBEDDED := data/cityscapes-synthetic
DATA_ROOT := $(if $(CITYSCAPES_DATASET),$(CITYSCAPES_DATASET),$(EMBEDDED))

.PHONY: demo dashboard test venv data check preview models api bench clean-data dashboard-venv dashboard-only docs docs-build

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# The dashboard alone, without TensorFlow (requirements-dashboard.txt): to view a run store copied
# from a GPU machine, and for the test that every page works there (tests/test_dashboard_env.py).
DASHBOARD_VENV ?= .venv-dashboard
DASHBOARD_PY := $(DASHBOARD_VENV)/bin/python
DASHBOARD_STAMP := $(DASHBOARD_VENV)/.requirements-installed

# cityscapesscripts without its dependencies (requirements-dashboard-nodeps.txt says why).
$(DASHBOARD_STAMP): requirements-dashboard.txt requirements-dashboard-nodeps.txt
	$(PYTHON) -m venv $(DASHBOARD_VENV)
	$(DASHBOARD_PY) -m pip install --quiet -r requirements-dashboard.txt
	$(DASHBOARD_PY) -m pip install --quiet --no-deps -r requirements-dashboard-nodeps.txt
	touch $(DASHBOARD_STAMP)

dashboard-venv: $(DASHBOARD_STAMP)

# The embedded dataset is generated once; its index is written last, so a generation that was
# interrupted is simply redone.
$(EMBEDDED)/segmentation_index.csv: | $(STAMP)
	$(PY) -m training data make --out $(EMBEDDED)

data: $(STAMP) $(if $(CITYSCAPES_DATASET),,$(EMBEDDED)/segmentation_index.csv)
	$(PY) -m training data index --data-root "$(DATA_ROOT)"

check: data
	$(PY) -m training data check --data-root "$(DATA_ROOT)"

preview: data
	$(PY) -m training data preview --data-root "$(DATA_ROOT)" --out docs/dataset_preview.png

# The demo model set is trained once, when the run store is empty, saying which model of how
# many and the time so far; the best on validation mIoU is deployed; then every run's latency is
# measured again in one pass, one run at a time, with nothing training (the figures taken right
# after each training may have shared the cores with it). On the embedded dataset every run then
# predicts its drive and snippets (the Drive page, temporal consistency; a real Cityscapes download's
# sequences are many thousand frames: predict-sequence them yourself). Run again, it trains and
# measures nothing.
# It ends by writing the runs' numbers to bench/results/demo_runs.json, which the docs' tables are made from.
models: data
	@if ! ls artifacts/runs/*/metrics.json >/dev/null 2>&1; then \
	  set -- configs/demo/[!_]*.yaml; total=$$#; i=0; start=$$(date +%s); \
	  for config in "$$@"; do \
	    i=$$((i + 1)); took=$$(($$(date +%s) - start)); \
	    printf 'model %d of %d: %s (elapsed %02d:%02d)\n' $$i $$total $$config $$((took / 60)) $$((took % 60)); \
	    $(PY) -m training train $$config --set data.root="$(DATA_ROOT)" || exit 1; \
	  done; \
	  took=$$(($$(date +%s) - start)); \
	  printf 'trained %d models in %02d:%02d\n' $$total $$((took / 60)) $$((took % 60)); \
	  $(PY) -m training deploy --best; \
	  $(PY) -m training benchmark; \
	  if [ -z "$(CITYSCAPES_DATASET)" ]; then for run in artifacts/runs/*/; do \
	    $(PY) -m training predict-sequence "$$(basename "$$run")" --all --data-root "$(DATA_ROOT)" || exit 1; \
	  done; fi; \
	fi
	$(PY) -m training table
	$(PY) -m training results --data-root "$(DATA_ROOT)" --out bench/results/demo_runs.json

# The API under gunicorn on loopback: API_HOST, API_PORT, API_WORKERS, API_THREADS override.
api: $(STAMP)
	$(PY) -m gunicorn -c api/gunicorn.conf.py "api:create_app()"

# The API in the background, the dashboard in the foreground (scripts/demo.sh): Ctrl-C stops both.
# API_HOST, API_PORT, DASHBOARD_PORT override.
demo: check preview models
	@echo
	@echo "Dataset in $(DATA_ROOT); contact sheet in docs/dataset_preview.png; runs in artifacts/runs"
	@PY="$(PY)" bash scripts/demo.sh "$(DATA_ROOT)"

# The dashboard alone (the API it calls: $$SEGMENTATION_API_URL, default http://127.0.0.1:8000).
dashboard: $(STAMP)
	$(PY) -m dashboard.serve --server.port $${DASHBOARD_PORT:-8501} --server.address 127.0.0.1

# The same dashboard from the TensorFlow-free environment (ARTIFACTS_DIR, CITYSCAPES_DATASET: the
# store and the dataset it was trained on).
dashboard-only: $(DASHBOARD_STAMP)
	$(DASHBOARD_PY) -m dashboard.serve --server.port $${DASHBOARD_PORT:-8501} --server.address 127.0.0.1

# The README's test command: the layers' lint (ruff, import-linter contracts in pyproject.toml), then
# the suite; tests/test_dashboard_env.py runs every page in the TensorFlow-free environment.
# Last, the docs site with --strict (as make docs-build).
test: $(STAMP) $(DASHBOARD_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	DASHBOARD_PYTHON=$(abspath $(DASHBOARD_PY)) $(PY) -m pytest
	$(MKDOCS) build --strict

# The docs site (mkdocs.yml) on loopback, rebuilt on every change (DOCS_PORT overrides); its tables
# of measured numbers are generated from bench/results/*.json and the run store's results
# (docs/hooks/). docs-build writes it to site/ and fails on any warning: a broken link or anchor,
# a docstring griffe cannot read, a results file missing.
docs: $(STAMP)
	$(MKDOCS) serve -a 127.0.0.1:$${DOCS_PORT:-8001}

docs-build: $(STAMP)
	$(MKDOCS) build --strict

# Every benchmark at the demo's 256x512 and at Cityscapes' 2048x1024 (generated once under data/).
# Not bench/bench_gpu.py: it needs a GPU machine (docs/benchmarks.md, On a GPU).
bench: $(STAMP)
	$(PY) bench/bench_png.py
	$(PY) bench/bench_evaluation.py --resolution demo full
	$(PY) bench/bench_import.py --resolution demo full
	$(PY) bench/bench_anatomy.py --resolution demo full
	$(PY) bench/bench_consensus.py --resolution demo full
	for r in demo full; do \
	    $(PY) bench/bench_batches.py --resolution $$r && $(PY) bench/bench_generation.py --resolution $$r && \
	    $(PY) bench/bench_api.py --resolution $$r && $(PY) bench/bench_dashboard.py --resolution $$r || exit 1; \
	done
	$(PY) bench/bench_training.py
	$(PY) bench/bench_models.py
	$(PY) bench/bench_export.py  # the runs of artifacts/ (make demo trains them)
	$(PY) bench/bench_latency.py
	$(PY) bench/bench_temporal.py
	$(PY) bench/bench_report.py
	$(PY) bench/bench_dashboard_browser.py
	$(PY) bench/bench_drive_browser.py
	$(PY) bench/bench_scale_out.py

clean-data:
	rm -rf $(EMBEDDED)
