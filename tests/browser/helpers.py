"""Provides helpers for the browser tests: screenshot paths, mid-test screenshots, admin login."""

import os
import re
from pathlib import Path

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BRANDFORGE_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The page fixture names each page after its test (name_page), for shot().
_page_names: dict[int, str] = {}


def name_page(page: Page, stem: str | None) -> None:
    """Register (or, with None, forget) the file name stem of a page's screenshots."""
    if stem is None:
        _page_names.pop(id(page), None)
    else:
        _page_names[id(page)] = stem


def chromium_available() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def screenshot_dir() -> Path:
    """BRANDFORGE_SCREENSHOT_DIR (relative to the working directory), or test-artifacts/."""
    configured = os.environ.get("BRANDFORGE_SCREENSHOT_DIR")
    return Path(configured).resolve() if configured else ROOT / "test-artifacts" / "screenshots"


def node_file_name(nodeid: str) -> str:
    """'tests/browser/test_x.py::TestY::test_z[a b]' → 'test_x--TestY--test_z-a_b-'."""
    path, *names = nodeid.split("::")
    name = "--".join([Path(path).stem, *names])
    return re.sub(r"[^A-Za-z0-9_.-]", "_", re.sub(r"[\[\]]", "-", name))[:150]


def screenshot(page: Page, file_stem: str) -> Path:
    folder = screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_stem}.png"
    page.screenshot(path=path, full_page=True)
    return path


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot now, as <test file name>--<name>.png."""
    stem = _page_names.get(id(page), "unnamed")
    return screenshot(page, f"{stem}--{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}")


def admin_login(page: Page, live_server, user, password: str) -> None:
    """Log in through the real admin login form and wait for the admin index.

    `user` is a user object or a username. Fails at once, with the form's error note, when the
    admin refuses the credentials.
    """
    username = user if isinstance(user, str) else user.get_username()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    page.locator("body.dashboard, .errornote").first.wait_for()
    if page.locator(".errornote").count():
        raise AssertionError(
            f"admin login as {username!r} failed: {page.locator('.errornote').inner_text()}"
        )
    assert page.url == f"{live_server.url}/admin/", page.url
