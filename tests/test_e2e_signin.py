"""End to end on a shared site: real sign-ins through an OpenID Connect provider, in Chromium.

``oidc-provider-mock`` (a real OpenID Connect provider, offline) signs alice, bob and an admin
(teacher@school.example) in to ``streamlit run dashboard.py``, started with ``[jaxstyle] mode =
"shared"``, Streamlit's ``[auth]`` and per-user limits in a secrets file of the test's own (the
repo's ``.streamlit/`` is never written). Alice and bob make runs on the Generate page with one
worker: the queue serves them in turn, and limits refuse in one line. Then neither sees nor opens
the other's runs, a share link opens a run read only until it is revoked, the admin sees both, and
a signed-out visitor sees the sign-in page only. The same, headless, is test_signin_app.py.

Screenshots go to the module's tmp dir (``signin0``). Without Chromium the tests skip, saying how
to install it, unless JAXSTYLE_REQUIRE_BROWSER=1 makes that a failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import app_health, open_expander, serve, settle, skip_or_fail, streamlit_command
from tests.support import CONTENT_DIR, STYLES_DIR, free_port, wait_until

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails) then, saying why
    PlaywrightTimeout = expect = None

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USERS = {"alice": "alice@example.com", "bob": "bob@example.com", "teacher": "teacher@school.example"}
ADMIN = "teacher"
# Per user: 3 runs queued or running at once, at most 64 px: alice's fourth run and bob's 96 px one are refused.
LIMITS = {"active_runs": 3, "size_px": 64, "iterations": 5000}
LONG_RUN = 5000  # alice's first run's iterations: it runs while the others queue, then she cancels it
QUICK_RUN = 10  # every other run's
SIZE_OPTIONS = [32, 48, 64, 96]  # the size slider's first options (ui.settings_form.SIZE_OPTIONS)
ALICE_TITLE = "tubingen × The Starry Night"
BOB_TITLE = "golden_gate × The Starry Night"
RUN_ACTIONS = ("PNG", "Favorite", "Re-run", "Compare", "Delete")  # a run's buttons for its owner


# ----- the provider and the app -------------------------------------------------------------------


def _secrets(app_url: str, provider_url: str) -> str:
    limits = "\n".join(f"{name} = {value}" for name, value in LIMITS.items())
    return f"""
[auth]
redirect_uri = "{app_url}/oauth2callback"
cookie_secret = "e2e-signin-cookie-secret"
client_id = "jaxstyle"
client_secret = "e2e-secret"
server_metadata_url = "{provider_url}/.well-known/openid-configuration"

[jaxstyle]
mode = "shared"
admins = ["{USERS[ADMIN]}"]

[jaxstyle.limits]
{limits}
"""


@dataclasses.dataclass
class Site:
    url: str  # http://localhost:PORT, the redirect_uri's host: the sign-in cookie is per host
    provider: str
    gallery: Path
    shots: Path
    browser: Any
    pages: dict[str, Any] = dataclasses.field(default_factory=dict)

    def page(self, user: str):
        """``user``'s page, in a browser context of their own (their own cookies), signed in once."""
        if user not in self.pages:
            page = self.browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            sign_in(page, self, user)
            self.pages[user] = page
        return self.pages[user]

    def runs(self, user: str) -> list:
        """``user``'s runs as the app's gallery file holds them, oldest first."""
        from jaxstyle import gallery

        with gallery.connect(self.gallery) as db:
            return gallery.list_runs(db, order="oldest", owner=user)

    def finished(self, run_id: int):
        from jaxstyle import gallery

        with gallery.connect(self.gallery) as db:
            return gallery.get_run(db, run_id).finished


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory, warm_cache_dir, fallback_weights) -> Iterator[Site]:
    """The provider and the app, each on a free port; the app with one worker and the fallback VGG."""
    if importlib.util.find_spec("oidc_provider_mock") is None:
        skip_or_fail("oidc-provider-mock is missing: `pip install -r requirements-dev.txt`")
    expect.set_options(timeout=30_000)
    tmp = tmp_path_factory.mktemp("signin")
    provider, app_port = f"http://127.0.0.1:{free_port()}", free_port()
    app = f"http://localhost:{app_port}"
    (tmp / "secrets.toml").write_text(_secrets(app, provider))
    env = {key: value for key, value in os.environ.items() if not key.startswith("JAXSTYLE_")}
    env |= {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    users = [
        arg
        for sub, email in USERS.items()
        for arg in ("--user-claims", json.dumps({"sub": sub, "email": email, "email_verified": True}))
    ]
    provider_cmd = [sys.executable, "-m", "oidc_provider_mock", "--port", provider.rsplit(":", 1)[1], *users]
    app_env = env | {
        "JAXSTYLE_GALLERY": str(tmp / "gallery.db"),
        "JAXSTYLE_CACHE_DIR": str(warm_cache_dir),  # holds the fallback VGG, made once
        "JAXSTYLE_STYLES_DIR": str(STYLES_DIR),
        "JAXSTYLE_WORKERS": "1",
        "STREAMLIT_SERVER_HEADLESS": "true",
    }
    app_cmd = streamlit_command(app_port, f"--secrets.files={tmp / 'secrets.toml'}")
    with (
        serve(provider_cmd, f"{provider}/.well-known/openid-configuration", tmp / "provider.log", env),
        serve(app_cmd, f"{app}/_stcore/health", tmp / "streamlit.log", app_env, ok=app_health),
    ):
        site = Site(app, provider, tmp / "gallery.db", tmp, browser)
        try:
            yield site
        finally:
            for page in site.pages.values():
                page.context.close()


@contextlib.contextmanager
def failure_shot(site: Site, name: str, *pages) -> Iterator[None]:
    """On a failure, leave a screenshot of each of ``pages`` in the module's tmp dir."""
    try:
        yield
    except BaseException:  # pytest.fail's Failed too
        for i, page in enumerate(pages):
            with contextlib.suppress(Exception):
                page.screenshot(path=site.shots / f"failure-{name}-{i}.png", full_page=True)
        raise


# ----- what a user does ---------------------------------------------------------------------------


def sign_in(page, site: Site, user: str) -> None:
    """From the sign-in page through the provider's authorize form, and back into the app as ``user``."""
    page.goto(site.url)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{site.provider}/oauth2/authorize?**")
    page.get_by_placeholder("sub").fill(user)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{site.url}/**")
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Signed in as {USERS[user]}")).to_be_visible()
    settle(page)


def retried(action, done, what: str, tries: int = 3) -> None:
    """``action()`` until ``done`` (a locator) shows: a click or key press during a rerun can be lost,
    more so while a run keeps both CPUs busy."""
    for _ in range(tries):
        action()
        with contextlib.suppress(PlaywrightTimeout):
            done.wait_for(timeout=10_000)
            settle(done.page)
            return
    pytest.fail(f"{what} did not take after {tries} tries")


def go(page, name: str) -> None:
    """Change page by the sidebar (page.goto would start a new session)."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=name)
    retried(link.click, page.get_by_role("heading", name=name), f"the {name} page")


def generate_form(page, photo: str, *, iterations: int) -> None:
    """Generate, Optimize: ``photo``, the default painting, 64 px and ``iterations``."""
    go(page, "Generate")
    optimize = page.get_by_role("radio", name="Optimize (step by step)")
    retried(optimize.click, page.get_by_text("2 · Style", exact=True), "Optimize")
    uploader = page.get_by_test_id("stFileUploader").first.locator("input[type=file]")
    chosen = page.get_by_text(f"{Path(photo).stem} · ", exact=False)
    retried(lambda: uploader.set_input_files(CONTENT_DIR / photo), chosen, f"the upload of {photo}")
    open_expander(page, "Advanced settings")
    configure(page, 64, iterations)


def configure(page, size_px: int, iterations: int) -> None:
    """The size slider and the iterations, checked on the settings' summary line."""

    def set_both() -> None:
        slider = page.get_by_role("group", name="Size (long side, px)").get_by_role("slider")
        slider.press("Home")
        settle(page)
        for _ in range(SIZE_OPTIONS.index(size_px)):
            slider.press("ArrowRight")
            settle(page)
        box = page.get_by_label("Iterations", exact=True)
        box.fill(str(iterations))
        box.press("Enter")
        settle(page)

    summary = page.get_by_text(f" · {size_px} px · {iterations} iterations", exact=False).first
    retried(set_both, summary, f"{size_px} px and {iterations} iterations")


def submit(page, site: Site, user: str) -> int:
    """Click Generate; the new run's id, once the page follows it."""
    before = len(site.runs(user))
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_until(lambda: len(site.runs(user)) > before, timeout_s=30, what=f"{user}'s new run in the gallery")
    run_id = site.runs(user)[-1].id
    expect(page.get_by_text(f"#{run_id} · ", exact=False)).to_be_visible()
    settle(page)
    return run_id


def refusal(page) -> str:
    """Click Generate expecting a refusal: the error line under the button."""
    page.get_by_role("button", name="Generate", exact=True).click()
    error = page.get_by_test_id("stAlertContentError")
    expect(error).to_be_visible()
    text = error.get_by_test_id("stMarkdownContainer").inner_text().strip()  # without the icon's name
    settle(page)
    return text


def progress_text(page) -> str:
    """The followed run's progress line, once its fragment has drawn it afresh (it does every second)."""
    page.wait_for_timeout(1_500)
    return page.get_by_test_id("stProgress").first.inner_text().strip()


def changed_progress(page, old: str, timeout_s: float = 15.0) -> str:
    """The progress line once it differs from ``old`` (``old`` if it doesn't within ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(PlaywrightTimeout):
            if (text := progress_text(page)) != old:
                return text
    return old


def open_run(page, site: Site, run_id: int, token: str | None = None) -> str:
    """``/gallery?run=…`` typed in (a new session, signed in by the cookie); the page's main text."""
    page.goto(f"{site.url}/gallery?run={run_id}" + (f"&token={token}" if token else ""))
    expect(page.get_by_test_id("stSidebar").get_by_text("Signed in as")).to_be_visible()
    settle(page)
    return page.get_by_test_id("stMain").inner_text()


def action_buttons(page, expected: tuple[str, ...]) -> list[str]:
    """Which of a run's owner's buttons the page shows, once they are ``expected`` or after 5 s
    (a download button can be drawn a moment after the rest)."""
    main = page.get_by_test_id("stMain")
    deadline = time.monotonic() + 5
    while True:
        shown = [name for name in RUN_ACTIONS if main.get_by_role("button", name=name, exact=True).count()]
        if shown == list(expected) or time.monotonic() > deadline:
            return shown
        page.wait_for_timeout(250)


# ----- the runs both users make -------------------------------------------------------------------


@pytest.fixture(scope="module")
def made(site: Site) -> dict[str, Any]:
    """With one worker: alice's long run, two short ones of hers queued behind it and a fourth
    refused; bob's short run queued after those, and a 96 px one refused. Then alice cancels her
    long run and the rest finish. Returns the run ids and what the pages said on the way."""
    seen: dict[str, Any] = {}
    alice = site.page("alice")
    with failure_shot(site, "alice-runs", alice):
        generate_form(alice, "tubingen.jpg", iterations=LONG_RUN)
        first = submit(alice, site, "alice")
        expect(alice.get_by_test_id("stProgress").first).to_contain_text(re.compile("Preparing|Iteration"))
        configure(alice, 64, QUICK_RUN)
        second = submit(alice, site, "alice")
        seen["alice_second"] = progress_text(alice)
        third = submit(alice, site, "alice")
        seen["alice_third"] = progress_text(alice)
        seen["alice_fourth_refused"] = refusal(alice)
        alice.screenshot(path=site.shots / "1-alice-queued.png", full_page=True)
    bob = site.page("bob")
    with failure_shot(site, "bob-run", alice, bob):
        generate_form(bob, "golden_gate.jpg", iterations=QUICK_RUN)
        bobs = submit(bob, site, "bob")
        seen["bob_first"] = progress_text(bob)
        seen["alice_third_after_bob"] = changed_progress(alice, seen["alice_third"])
        seen["first_while_queued"] = site.runs("alice")[0].status
        bob.screenshot(path=site.shots / "2-bob-queued.png", full_page=True)
        configure(bob, 96, QUICK_RUN)
        seen["bob_96px_refused"] = refusal(bob)
    with failure_shot(site, "cancel", alice):
        open_run(alice, site, first)  # the long run's page in the gallery: Delete, then Cancel the run
        alice.get_by_test_id("stMain").get_by_role("button", name="Delete", exact=True).click()
        alice.get_by_role("button", name="Cancel the run", exact=True).click()
        wait_until(
            lambda: (
                [run.status for user in ("alice", "bob") for run in site.runs(user)]
                == ["cancelled", "done", "done", "done"]
            ),
            timeout_s=300,
            what="alice's first run cancelled and the others done",
        )
    seen["ids"] = {"alice": [first, second, third], "bob": [bobs]}
    return seen


# ----- the tests ----------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_each_user_makes_runs_and_the_queue_serves_them_in_turn(site, made):
    """One worker, busy with alice's first run: her next two wait; bob's, queued after them, goes first."""
    (first, second, third), (bobs,) = made["ids"]["alice"], made["ids"]["bob"]
    assert [run.id for run in site.runs("alice")] == [first, second, third]
    assert [run.id for run in site.runs("bob")] == [bobs]
    assert made["first_while_queued"] == "running"  # else the positions below say nothing
    assert made["alice_second"] == "Waiting for the worker…"
    assert made["alice_third"] == "Waiting for the worker: 1 run(s) ahead"
    assert made["bob_first"] == "Waiting for the worker…"  # ahead of alice's two waiting runs
    assert made["alice_third_after_bob"] == "Waiting for the worker: 2 run(s) ahead"
    assert site.finished(first) < site.finished(bobs) < site.finished(second) < site.finished(third)


@pytest.mark.timeout(600)
def test_a_limit_refuses_a_run_in_one_line(site, made):
    assert made["alice_fourth_refused"] == (
        "you already have 3 runs queued or running (the limit is 3 per user); wait for one to finish or cancel one"
    )
    assert made["bob_96px_refused"] == (
        "a size of 96 px is over your limit of 64 px; ask an admin of this site for a larger share"
    )
    assert len(site.runs("alice")) == 3 and len(site.runs("bob")) == 1  # neither refusal stored a run


@pytest.mark.timeout(600)
def test_neither_user_sees_the_others_runs_but_an_admin_sees_both(site, made):
    alices, bobs = made["ids"]["alice"], made["ids"]["bob"]
    for user, expected in (("alice", alices), ("bob", bobs), (ADMIN, alices + bobs)):
        page = site.page(user)
        with failure_shot(site, f"gallery-{user}", page):
            page.goto(f"{site.url}/gallery")  # the sidebar's link keeps a run's ?run= when on its page
            expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
            settle(page)
            count = page.get_by_text(re.compile(r"^\d+ runs?, newest first$"))
            expect(count).to_be_visible()
            page.screenshot(path=site.shots / f"3-gallery-{user}.png", full_page=True)
            cards = page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"^#\d+ · "))
            shown = [caption.split(" · ")[0] for caption in cards.all_inner_texts()]
            titles = {title: page.get_by_text(title, exact=True).count() for title in (ALICE_TITLE, BOB_TITLE)}
        assert count.inner_text() == f"{len(expected)} run{'s' if len(expected) > 1 else ''}, newest first", user
        assert shown == [f"#{run_id}" for run_id in sorted(expected, reverse=True)], user
        assert titles == {ALICE_TITLE: 3 * (user != "bob"), BOB_TITLE: 1 * (user != "alice")}, user
    admin = site.page(ADMIN)
    with failure_shot(site, "admin-detail", admin):
        text = open_run(admin, site, bobs[0])
        assert BOB_TITLE in text and "no run" not in text
        assert action_buttons(admin, RUN_ACTIONS) == list(RUN_ACTIONS)  # everything bob himself has


@pytest.mark.timeout(600)
def test_another_users_run_url_answers_like_a_missing_run(site, made):
    alices, bobs = made["ids"]["alice"], made["ids"]["bob"]
    for user, foreign, own in (("alice", bobs[0], alices[1]), ("bob", alices[1], bobs[0])):
        page = site.page(user)
        with failure_shot(site, f"foreign-{user}", page):
            missing = open_run(page, site, 999)
            foreign_text = open_run(page, site, foreign)
            page.screenshot(path=site.shots / f"4-foreign-{user}.png", full_page=True)
            assert f"no run {foreign} in this gallery" in foreign_text and ".db" not in foreign_text, user
            assert foreign_text == missing.replace("999", str(foreign)), user
            assert ALICE_TITLE not in foreign_text and BOB_TITLE not in foreign_text, user
            assert action_buttons(page, ()) == [], user  # nothing to download, compare, re-run or delete
            own_text = open_run(page, site, own)  # one's own run by the same kind of URL: everything
            assert "no run" not in own_text and action_buttons(page, RUN_ACTIONS) == list(RUN_ACTIONS), user


@pytest.mark.timeout(600)
def test_a_share_link_opens_the_run_read_only_until_revoked(site, made):
    bobs = made["ids"]["bob"][0]
    bob, alice = site.page("bob"), site.page("alice")
    with failure_shot(site, "share", bob, alice):
        open_run(bob, site, bobs)
        bob.get_by_test_id("stExpander").get_by_text("Share", exact=True).click()
        bob.get_by_role("button", name="Create a share link").click()
        link = bob.get_by_test_id("stCode")
        expect(link).to_contain_text("token=")
        url = link.inner_text().strip()
        bob.screenshot(path=site.shots / "5-share-link.png", full_page=True)
        assert url.startswith(f"{site.url}/gallery?run={bobs}&token="), url
        token = url.rsplit("token=", 1)[1]

        text = open_run(alice, site, bobs, token)
        alice.screenshot(path=site.shots / "6-shared-read-only.png", full_page=True)
        assert "Shared with you · read only" in text and BOB_TITLE in text
        assert action_buttons(alice, ("PNG",)) == ["PNG"]  # to download, nothing to change
        alice.goto(url)  # the link as bob copied it
        expect(alice.get_by_text("Shared with you · read only", exact=False)).to_be_visible()

        bob.get_by_role("button", name="Revoke the link").click()
        expect(bob.get_by_role("button", name="Create a share link")).to_be_visible()
        revoked = open_run(alice, site, bobs, token)
        assert f"no run {bobs} in this gallery" in revoked and BOB_TITLE not in revoked
        assert action_buttons(alice, ()) == []


@pytest.mark.timeout(600)
def test_a_signed_out_visitor_sees_the_sign_in_page_only(site, made):
    alices = made["ids"]["alice"]
    visitor = site.browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    alice = site.page("alice")
    try:
        with failure_shot(site, "signed-out", visitor, alice):
            for path in ("/", f"/gallery?run={alices[1]}", "/generate"):
                visitor.goto(site.url + path)
                expect(visitor.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
                settle(visitor)
                assert visitor.get_by_role("button").count() == 1, path  # Sign in, and nothing else
                assert visitor.get_by_test_id("stSidebar").count() == 0, path  # no pages to go to
                assert ALICE_TITLE not in visitor.get_by_test_id("stMain").inner_text(), path
            visitor.screenshot(path=site.shots / "7-signed-out.png", full_page=True)
            # Alice signs out, through the provider's end-session page: the sign-in page again,
            # on her run's URL too.
            alice.get_by_role("button", name="Sign out", exact=True).click()
            alice.wait_for_url(f"{site.provider}/oauth2/end_session?**")
            alice.get_by_role("button", name="End session", exact=True).click()
            expect(alice.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
            alice.goto(f"{site.url}/gallery?run={alices[1]}")
            expect(alice.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
            settle(alice)
            assert alice.get_by_role("button").count() == 1
            assert ALICE_TITLE not in alice.get_by_test_id("stMain").inner_text()
    finally:
        visitor.context.close()
        site.pages.pop("alice").context.close()
