# Every target does its own set-up from a fresh clone: only python3 (3.11+) and make are needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8765

.PHONY: serve test test-ui test-slow lint typecheck conformance fuzz bench generated clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/quantdesk serve --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest -q

# The dashboard in a real headless browser: Playwright for Python driving Debian's Chromium (installed when missing;
# no browser download at run time). Screenshots of every page land in .ui-screenshots/.
test-ui: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest -q -m browser tests/ui

# The long realism runs (a year of generated returns, several seeds); .ci/run runs them too.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check server tools schemas compat_http tests bench scripts
	$(VENV)/bin/lint-imports
	$(MAKE) typecheck

# mypy cannot follow the editable finder; a link tree gives it the quantdesk.<folder> layout.
typecheck: $(STAMP)
	rm -rf .typecheck && mkdir -p .typecheck/quantdesk
	for d in server tools schemas compat_http; do ln -s ../../$$d .typecheck/quantdesk/$$d; done
	cd .typecheck && MYPYPATH=. ../$(VENV)/bin/mypy --config-file ../pyproject.toml \
		-p quantdesk.server -p quantdesk.tools -p quantdesk.schemas -p quantdesk.compat_http

conformance: $(STAMP)
	$(PY) scripts/conformance.py

# schemathesis against the server's own OpenAPI document, every check, all compat profiles.
fuzz: $(STAMP)
	$(PY) scripts/fuzz_openapi.py

bench: $(STAMP)
	$(PY) bench/mcp_overhead.py
	$(PY) bench/generation.py
	$(PY) bench/normalize.py
	$(PY) bench/startup.py
	$(PY) bench/desk.py
	$(PY) bench/agents.py
	$(PY) bench/risk.py
	$(PY) bench/ws_fanout.py
	$(PY) bench/signals.py

generated: $(STAMP)
	$(VENV)/bin/quantdesk export-wellknown
	$(VENV)/bin/quantdesk export-schemas
	$(PY) scripts/update_readme_tools.py

clean:
	rm -rf $(VENV) .typecheck build dist .pytest_cache .mypy_cache .ruff_cache .conformance
