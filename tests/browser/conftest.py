"""Provides real-browser fixtures: Debian's Chromium driven by Playwright, with screenshots.

Every test in this folder gets the `browser` marker. A browser test takes `page` and `live_server`
and needs `@pytest.mark.django_db(transaction=True)`: the live server answers from its own thread,
so the test's data must be committed (the SQLite test database is a file, see settings).

Screenshots: after every test a full-page `<test>.png`, and `<test>-failed.png` as well when the
test failed, in test-artifacts/screenshots/ (BRANDFORGE_SCREENSHOT_DIR overrides); `shot(page,
name)` from tests.browser.helpers saves one mid-test.
"""

import os
import warnings

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_available,
    name_page,
    node_file_name,
    screenshot,
)

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIRE_BROWSER = os.environ.get("BRANDFORGE_REQUIRE_BROWSER") == "1"
MISSING = f"browser: Debian Chromium not found at {CHROMIUM} (make test installs it)"


def pytest_collection_modifyitems(config, items):
    # Called with the items of the whole run: mark ours, then skip (or refuse) all browser tests.
    for item in items:
        if str(item.path).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.browser)
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    if not browser_items or chromium_available():
        return
    if REQUIRE_BROWSER:
        raise pytest.UsageError(
            f"BRANDFORGE_REQUIRE_BROWSER=1, but there is no Chromium at {CHROMIUM}: install "
            "Debian's chromium package (make test does) or point BRANDFORGE_CHROMIUM at one."
        )
    skip = pytest.mark.skip(reason=MISSING)
    for item in browser_items:
        item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (rep_setup, rep_call), for the page fixture."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def chromium():
    """One Chromium for the browser tests, closed after the last of them.

    Playwright's sync API runs an asyncio loop in this thread and, between its calls, leaves it
    marked as the thread's running loop for as long as Playwright is started (see
    playwright/_impl/_greenlets.py, wait_for_future). Django then takes the test code (database
    access, the transactional flush) for async code and raises SynchronousOnlyOperation. Our
    Django code is not async and nothing else runs on that loop between Playwright's calls, so
    DJANGO_ALLOW_ASYNC_UNSAFE is safe here, but only here: it is set just before Playwright
    starts and restored right after it stops. Package scope, rather than session scope, ends
    both with the last test in this folder, so the tests that run after them see no running
    loop and keep Django's async-safety check.
    """
    if not chromium_available():
        pytest.skip(MISSING)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(request, chromium):
    """A fresh context (1400×900) and page per test; screenshots on teardown, see above."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    stem = node_file_name(request.node.nodeid)
    name_page(page, stem)
    try:
        yield page
    finally:
        name_page(page, None)
        failed = any(
            getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
            for when in ("setup", "call")
        )
        try:
            screenshot(page, stem)
            if failed:
                screenshot(page, f"{stem}-failed")
        except PlaywrightError as exc:  # a crashed or closed page: keep the test's own outcome
            warnings.warn(f"no screenshot of {request.node.nodeid}: {exc}", stacklevel=1)
        finally:
            context.close()
