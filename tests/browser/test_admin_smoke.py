"""Smoke-tests the admin in a real browser: the login form, the index, a refused password."""

import pytest

from tests.browser.helpers import admin_login, shot

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(
        username="editor", email="editor@example.com", password=PASSWORD
    )


def test_admin_login_shows_the_review_app(page, live_server, staff):
    admin_login(page, live_server, staff, PASSWORD)

    assert page.title() == "Brand asset factory | BrandForge"
    review = page.locator("#content-main .app-review")
    assert review.locator("caption a", has_text="Review").is_visible()
    link = review.get_by_role("link", name="Review items", exact=True)
    assert link.get_attribute("href") == "/admin/review/reviewitem/"
    shot(page, "admin-index")

    link.click()
    page.wait_for_url(f"{live_server.url}/admin/review/reviewitem/")
    assert page.locator("#content h1").inner_text() == "Select review item to change"


def test_wrong_password_shows_the_error_note(page, live_server, staff):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", "not the password")
    page.click("#login-form [type=submit]")

    note = page.locator(".errornote")
    note.wait_for()
    assert "enter the correct username and password" in note.inner_text()
    assert page.url.startswith(f"{live_server.url}/admin/login/")
    assert not page.locator("body.dashboard").count()
    shot(page, "error-note")
