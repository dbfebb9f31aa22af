# ptort_lab: set-up, demo, tests. Every target creates the local virtual environment when needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: venv demo test extension examples bench notebooks lab docs clean

venv: $(STAMP)             ## (and the compiled pricing modules: built when missing or stale, ptort_lab/compiled.py)
	@$(PY) -m ptort_lab.build_compiled

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

demo: venv                 ## the spec example, end to end
	$(PY) examples/csp_pipeline/csp_pipeline_example.py

test: venv $(DOCS_STAMP)   ## every test (unit, acceptance, layering, examples, notebooks, docs build, browser)
	PYTHON=$(abspath $(PY)) extensions/build.sh --if-node
	$(PY) -m pytest -q

extension: venv            ## build + install the JupyterLab renderers (needs Node ^20.19 or >=22.12)
	PYTHON=$(abspath $(PY)) extensions/build.sh

examples: venv             ## every example at its default size (flash_attention: --size small), checked against numpy
	@set -e; for d in examples/*/; do \
	  if [ -f $$d/Makefile ]; then echo "== $$d"; $(MAKE) -s -C $$d run PYTHON=$(abspath $(PY)); fi; \
	done

bench: venv                ## speed and calibration benchmarks (ratios, see bench/RESULTS.md)
	$(PY) bench/pipeline_speed.py
	$(PY) bench/calibrate_gemm.py
	$(PY) bench/widget_latency.py
	$(PY) bench/sweep_speed.py

notebooks: venv            ## rebuild the tutorials from notebooks/src and store their outputs
	MPLBACKEND=Agg $(PY) notebooks/build.py

docs: $(DOCS_STAMP)        ## the documentation site in docs/_build/html (warnings are errors, nitpicky)
	MPLBACKEND=Agg $(PY) -m sphinx -b html -W --keep-going -n docs docs/_build/html

lab: venv                  ## JupyterLab on notebooks/ (first run installs JupyterLab and the renderers)
	$(PY) -m pip install --quiet -e '.[lab]'
	PYTHON=$(abspath $(PY)) extensions/build.sh --if-node
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

clean:
	rm -rf $(VENV) ptort_lab/_compiled .pytest_cache .hypothesis build dist *.egg-info extensions/ptort-lab-renderers/node_modules \
	    docs/_build docs/api/generated
