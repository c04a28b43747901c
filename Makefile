# The two commands a new machine needs:
#   make run    set up and run the bot on the embedded SQLite database (http://127.0.0.1:8000/wechat)
#   make test   set up and run the whole test suite, on SQLite and on PostgreSQL + Redis
PYTHON ?= python3
VENV := .venv
# What is installed comes from the lock files, exact versions for Python 3.11 on Linux x86_64: requirements.lock
# (runtime) and requirements-dev.lock (runtime + dev extras); `make lock` writes them from pyproject.toml.
# Each stamp's name carries a checksum of its lock and pyproject.toml (the project itself is installed from it),
# so a changed lock installs again.
RUNTIME_STAMP := $(VENV)/.installed-runtime-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)
UV_VERSION := 0.13.9
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.lock pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-runtime-*
	touch $@

$(DEV_STAMP): requirements-dev.lock pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements-dev.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-dev-*
	touch $@

.PHONY: install lock browser run lint test test-sqlite test-postgresql
install: $(DEV_STAMP)

# After a change to pyproject.toml's dependencies. uv keeps the versions already locked where they still fit
# (`make lock UV_ARGS=--upgrade` moves everything to the newest); the dev lock is constrained to the runtime one,
# so both install the same runtime versions.
lock: | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip compile --quiet $(LOCK_TARGET) $(UV_ARGS) pyproject.toml -o requirements.lock
	$(VENV)/bin/uv pip compile --quiet $(LOCK_TARGET) $(UV_ARGS) pyproject.toml --extra dev -c requirements.lock \
	  -o requirements-dev.lock

# The dashboard's browser test drives Debian's headless Chromium (never a downloaded browser), in Chinese
# (chromium-l10n) as an organizer's is; a CJK font makes its screenshots readable; libzbar0 reads the QR
# codes back. Installed once, with apt-get, when missing.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] \
	  || [ ! -e /usr/lib/chromium/locales/zh-CN.pak ] || ! ldconfig -p | grep -q libzbar.so.0; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver chromium-l10n \
	    fonts-wqy-microhei libzbar0 >/dev/null; \
	fi

run: $(RUNTIME_STAMP)
	WECHAT_TOKEN=$${WECHAT_TOKEN:-eventbot-dev-token} $(VENV)/bin/eventbot serve --host 127.0.0.1 --port $${PORT:-8000}

# The layers contract in pyproject.toml (a wrong import fails the suite) and ruff, before any test runs.
lint: $(DEV_STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check bot handlers models scheduler tests bench

test: test-sqlite test-postgresql

test-sqlite: $(DEV_STAMP) browser lint
	EVENTBOT_TEST_BACKEND=sqlite $(VENV)/bin/pytest $(PYTEST_ARGS)

test-postgresql: $(DEV_STAMP) browser lint
	EVENTBOT_TEST_BACKEND=postgresql $(VENV)/bin/pytest $(PYTEST_ARGS)
