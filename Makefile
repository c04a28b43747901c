# The two commands a new machine needs:
#   make run    set up and run the bot on the embedded SQLite database (http://127.0.0.1:8000/wechat)
#   make test   set up and run the whole test suite, on SQLite and on PostgreSQL + Redis
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

.PHONY: install browser run test test-sqlite test-postgresql
install: $(STAMP)

# The dashboard's browser test drives Debian's headless Chromium (never a downloaded browser); a CJK font
# makes its screenshots readable. Installed once, with apt-get, when missing.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null; \
	fi

run: $(STAMP)
	WECHAT_TOKEN=$${WECHAT_TOKEN:-eventbot-dev-token} $(VENV)/bin/eventbot serve --host 127.0.0.1 --port $${PORT:-8000}

test: test-sqlite test-postgresql

test-sqlite: $(STAMP) browser
	EVENTBOT_TEST_BACKEND=sqlite $(VENV)/bin/pytest $(PYTEST_ARGS)

test-postgresql: $(STAMP) browser
	EVENTBOT_TEST_BACKEND=postgresql $(VENV)/bin/pytest $(PYTEST_ARGS)
