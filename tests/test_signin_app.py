"""A shared site in the app, headless (AppTest with a signed-in ``st.user``): the sign-in page for a
signed-out visitor, each user's own gallery, another user's run answering "not found", share links
read only, the public page, admins seeing everything; personal mode untouched. The real sign-in
through an OpenID Connect provider in Chromium is test_e2e_signin.py.
"""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from jaxstyle import gallery
from tests.support import APP, add_done_run, cards

AUTH = {  # Streamlit's [auth]: never contacted here, AppTest's st.user stands in for a sign-in
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "test-cookie-secret",
    "client_id": "jaxstyle",
    "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
SHARED = {"mode": "shared", "admins": ["teacher@school.example"]}
ALICE = {"is_logged_in": True, "sub": "alice-sub", "email": "alice@example.com"}
BOB = {"is_logged_in": True, "sub": "bob-sub", "email": "bob@example.com"}
TEACHER = {"is_logged_in": True, "sub": "teacher-sub", "email": "teacher@school.example"}


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def site_app(user: dict, *, page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.secrets["jaxstyle"] = SHARED
    at.user.clear()
    at.user.update(user)
    at.run()
    if page:
        at.query_params.update(query or {})
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    return at


def run_of(gallery_path, photos, owner: str | None, title: str, color: str = "navy") -> int:
    with gallery.connect(gallery_path) as db:
        return add_done_run(
            db, photos, styles=("udnie",), title=title, owner=owner, origin=f"{title}.jpg", result=color
        )


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.title, *at.error, *at.info))


def test_a_signed_out_visitor_sees_the_sign_in_page_only(app_gallery, photos):
    run_of(app_gallery, photos, "alice-sub", "alices-secret")
    at = site_app({"is_logged_in": False})
    assert [b.key for b in at.button] == ["sign_in"]
    assert "Sign in" in texts(at) and "alices-secret" not in texts(at)
    at.query_params["run"] = "1"
    at.switch_page("app_pages/gallery.py").run()
    assert [b.key for b in at.button] == ["sign_in"] and "alices-secret" not in texts(at)


def test_each_user_sees_only_their_own_runs_and_an_admin_sees_all(app_gallery, photos):
    alices = run_of(app_gallery, photos, "alice-sub", "alices-run")
    bobs = run_of(app_gallery, photos, "bob-sub", "bobs-run", "olive")
    for user, expected in ((ALICE, [alices]), (BOB, [bobs]), (TEACHER, [bobs, alices])):
        at = site_app(user, page="gallery")
        assert cards(at, "gallery_open") == expected
        home = site_app(user)
        assert cards(home, "home_open") == expected
    at = site_app(ALICE, page="gallery")
    assert "Signed in as **alice@example.com**" in " ".join(c.value for c in at.sidebar.caption)
    assert "sign_out" in [b.key for b in at.sidebar.button]


def test_another_users_run_id_answers_not_found_like_a_missing_one(app_gallery, photos):
    bobs = run_of(app_gallery, photos, "bob-sub", "bobs-run")
    foreign = site_app(ALICE, page="gallery", query={"run": str(bobs)})
    missing = site_app(ALICE, page="gallery", query={"run": "999"})
    assert [e.value for e in foreign.error] == [e.value.replace("999", str(bobs)) for e in missing.error]
    assert foreign.error and "bobs-run" not in texts(foreign) and ".db" not in foreign.error[0].value
    assert "back_missing" in [b.key for b in foreign.button]  # a way back to the gallery
    assert not [b for b in foreign.button if b.key in ("rerun", "confirm_delete", "add_compare")]


def test_a_share_link_opens_the_run_read_only_and_stops_once_revoked(app_gallery, photos):
    bobs = run_of(app_gallery, photos, "bob-sub", "bobs-run")
    owner = site_app(BOB, page="gallery", query={"run": str(bobs)})
    owner.button(key="share_create").click().run()
    with gallery.connect(app_gallery) as db:
        token = gallery.share_token(db, bobs)
    assert token and token in " ".join(c.value for c in owner.code)
    shared = site_app(ALICE, page="gallery", query={"run": str(bobs), "token": token})
    assert "Shared with you · read only" in texts(shared) and not shared.error
    keys = {b.key for b in shared.button} | {d.key for d in shared.get("download_button")}
    assert "shared_download" in keys and not keys & {"rerun", "confirm_delete", "add_compare", "favorite"}
    owner = site_app(BOB, page="gallery", query={"run": str(bobs)})
    owner.button(key="share_revoke").click().run()
    revoked = site_app(ALICE, page="gallery", query={"run": str(bobs), "token": token})
    assert revoked.error and "no run" in revoked.error[0].value


def test_a_published_run_is_listed_for_everyone_under_published(app_gallery, photos):
    bobs = run_of(app_gallery, photos, "bob-sub", "bobs-run")
    run_of(app_gallery, photos, "bob-sub", "bobs-private", "olive")
    owner = site_app(BOB, page="gallery", query={"run": str(bobs)})
    owner.toggle(key=f"public_{bobs}").set_value(True).run()
    at = site_app(ALICE, page="gallery")
    assert cards(at, "gallery_open") == []
    at.segmented_control(key="g_scope").set_value("Published").run()
    assert cards(at, "gallery_open") == [bobs]


def test_a_shared_site_without_auth_or_with_a_wrong_setting_stops_with_one_line(app_gallery):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["jaxstyle"] = SHARED
    at.run()
    assert "needs an [auth] table" in at.error[0].value and not at.button
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.secrets["jaxstyle"] = {"mode": "sharde"}
    at.run()
    assert "mode must be 'personal' or 'shared'" in at.error[0].value and not at.button


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, fallback_weights):
    """A one-style model trained for 2 steps at 32 px, to copy into a gallery under any name."""
    from jaxstyle import inputs
    from jaxstyle.instant import models
    from jaxstyle.instant.train import TrainSettings, train
    from tests.support import CONTENT_DIR, STYLES_DIR

    elsewhere = tmp_path_factory.mktemp("tiny-model") / "gallery.db"
    styles = [("starry_night", inputs.from_path(STYLES_DIR / "starry_night.jpg").image)]
    train("tiny", styles, CONTENT_DIR, TrainSettings(size_px=32, steps=2, batch=1), fallback_weights,
          gallery_path=elsewhere)  # fmt: skip
    return models.load_model("tiny", elsewhere)


def test_models_are_their_owners_and_trainings_follow_the_share(app_gallery, tiny_model, monkeypatch):
    from jaxstyle.instant import models

    for name, owner in (("alices-model", "alice-sub"), ("bobs-model", "bob-sub")):
        document = models.model_document(name, tiny_model.net, tiny_model.norms, tiny_model.meta,
                                         tiny_model.style_images)  # fmt: skip
        models.save_model(models.model_path(name, app_gallery), document)
        with gallery.connect(app_gallery) as db:
            gallery.set_model_owner(db, name, owner)
    for user, expected in ((ALICE, {"alices-model"}), (BOB, {"bobs-model"}), (TEACHER, {"alices-model", "bobs-model"})):
        at = site_app(user, page="models")
        shown = {h.value for h in at.subheader} & {"alices-model", "bobs-model"}
        assert shown == expected, user
        generate = site_app(user, page="generate")
        labels = generate.selectbox(key="i_model").options  # "alices-model · 1 style"
        assert {name for name in ("alices-model", "bobs-model") if any(name in label for label in labels)} == expected
    # Trainings are not part of the default share: refused in one line, nothing started.
    at = site_app(ALICE, page="models")
    at.text_input(key="t_name").input("mine").run()
    at.button(key="train").click().run()
    assert any("training models is not part of your share" in e.value for e in at.error)
    assert not models.model_path("mine", app_gallery).exists()
