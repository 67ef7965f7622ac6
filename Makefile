# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROMTOOL_STAMP := $(VENV)/.promtool-tried

.PHONY: demo test lint pytest browser schema bench chaos soak clean promtool mypy-src

# `make test` needs the linters and test tools ([test]); `make demo` only what tradectl runs on,
# and shows pip's progress instead of a silent minute.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(DEMO_STAMP)

DEMO_STAMP := $(VENV)/.installed-runtime

$(DEMO_STAMP): pyproject.toml
	@echo "make demo: installing tradectl and its runtime dependencies into $(VENV) (first run only)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/tradectl run rules/ --sim

test: $(STAMP) $(PROMTOOL_STAMP) lint pytest

lint: $(STAMP) mypy-src
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=.mypy-src $(BIN)/lint-imports --no-cache

# mypy and import-linter read the package under its installed name, tradectl: a tree of hard
# links maps it onto the folders daemon/ and schemas/ (pyproject.toml's package-dir does the
# same for the install). Rebuilt on every run, so it always holds the current files.
mypy-src:
	rm -rf .mypy-src && mkdir -p .mypy-src
	cp -rl daemon .mypy-src/tradectl
	cp -rl schemas .mypy-src/tradectl/schemas

# pytest-xdist workers: most e2e tests wait on a daemon, a gateway or a clock rather than on
# the CPU, so two workers halve the wall time on 2 cores. More were faster still, but crowded
# the simulated gateways into IB pacing errors (docs/testing.md has the figures).
# `make test PYTEST_WORKERS=0` runs the suite in one process.
PYTEST_WORKERS ?= 2

pytest: $(STAMP) browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

# promtool (Debian's prometheus package) checks examples/prometheus/alerts.yml; its tests skip
# without it. Tried once per venv, only as root with apt-get, and never fails the build.
$(PROMTOOL_STAMP): $(STAMP)
	@command -v promtool >/dev/null \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
			&& { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
				|| { apt-get update -q >/dev/null 2>&1 \
					&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; }; }; } \
		|| echo "promtool not installed: the promtool tests will skip (apt-get install prometheus)"
	@touch $(PROMTOOL_STAMP)

promtool:
	rm -f $(PROMTOOL_STAMP)
	$(MAKE) $(PROMTOOL_STAMP)
# The HTML report's test opens it in Debian's Chromium (driven by Playwright, never by
# `playwright install`). Installed when apt-get can (as root); otherwise that test skips.
# Never fails, and costs nothing once chromium is there.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium for the HTML report's browser test"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				chromium) >/dev/null 2>&1 || true; \
		fi; \
		command -v chromium >/dev/null 2>&1 || \
			echo "chromium is not installed: the HTML report's browser test will skip"; \
	}

# Benchmarks are not part of `make test` (timings on a shared machine are noisy); their --quick
# smoke runs are. Takes about 10 minutes; see benchmarks/README.md.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.rebalance
	$(BIN)/python -m benchmarks.reaction
	$(BIN)/python benchmarks/planner_scaling.py
	$(BIN)/python -m benchmarks.footprint
	$(BIN)/python -m benchmarks.protection
	$(BIN)/python -m benchmarks.startup

# The long reliability tier (tests marked chaos; about 10 minutes on 2 cores); its figures go
# into docs/reliability.md.
chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos tests/reliability
	$(BIN)/python -m tests.reliability.report

# The simulated week of issue #13 (tests marked soak; at most 10 minutes): its figures go to
# var/soak/week.json and var/soak/week.md (docs/reliability.md, "Simulated week").
soak: $(STAMP)
	$(BIN)/python -m pytest -m soak tests/soak
	cat var/soak/week.md

schema: $(STAMP)
	$(BIN)/tradectl schema --out schemas/rules.schema.json

clean:
	rm -rf $(VENV) .mypy-src build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
