# The two commands of the README: `make demo` (set up, run the whole pipeline, serve the admin)
# and `make test`. Everything else here is a step of those two.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
CHROMIUM := /usr/bin/chromium

.PHONY: demo demo-run serve test lint format venv clean-demo

demo: demo-run serve

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo-run: venv
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py demo

serve: venv
	@echo "Admin at http://$(HOST):$(PORT)/admin/ (Ctrl-C to stop)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT) --noreload

test: venv $(TEST_FONT) $(CHROMIUM)
	$(BIN)/pytest

# The layout tests draw text with a real TrueType font (Debian's fonts-dejavu-core).
$(TEST_FONT):
	@echo "installing fonts-dejavu-core (the layout tests draw text with DejaVu Sans)"
	@if [ "$$(id -u)" -eq 0 ]; then \
		apt-get update -qq && apt-get install -y -qq fonts-dejavu-core >/dev/null; \
	else sudo apt-get install -y -qq fonts-dejavu-core; fi

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; no
# `playwright install`: the pip package carries its own driver.
$(CHROMIUM):
	@echo "installing chromium (the browser tests drive Debian's Chromium through Playwright)"
	@if [ "$$(id -u)" -eq 0 ]; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean-demo:
	rm -rf db.sqlite3 db.sqlite3-wal db.sqlite3-shm media staticfiles
