"""A shared site's core: its configuration, who owns and may see a run (the owner, admins, a share
link, the public page), each owner's own names for their inputs, storage per user, and imports
that become the importer's. The browser flow with sign-in is in test_e2e_signin.py; the job
queue's limits and turns in test_fair_queue.py.
"""

from __future__ import annotations

import pytest

from jaxstyle import gallery
from jaxstyle.errors import LimitError, SettingsError
from jaxstyle.site import SiteConfig, UserLimits, Viewer, check_run
from tests.support import add_done_run, solid_png

ALICE = Viewer("alice-sub", "alice@example.com")
BOB = Viewer("bob-sub", "bob@example.com")
ADMIN = Viewer("teacher-sub", "teacher@school.example", is_admin=True)
PERSONAL = SiteConfig().viewer(None)


# --- Configuration


def test_no_configuration_is_the_personal_mode_where_everyone_sees_everything():
    config = SiteConfig.from_mapping(None)
    assert not config.shared
    viewer = config.viewer(None)
    assert viewer.sees_everything and viewer.subject is None and viewer.may_touch("anyone")


def test_a_shared_configuration_names_admins_by_email_and_limits_per_user():
    config = SiteConfig.from_mapping(
        {"mode": "shared", "admins": ["Teacher@School.example"], "limits": {"active_runs": 1, "trainings": True}}
    )
    assert config.shared and config.limits == UserLimits(active_runs=1, trainings=True)
    assert config.viewer("t", "teacher@school.example").is_admin
    student = config.viewer("s", "student@school.example")
    assert not student.is_admin and not student.sees_everything
    assert student.may_touch("s") and not student.may_touch("t") and not student.may_touch(None)
    with pytest.raises(SettingsError, match="needs a signed-in user"):
        config.viewer(None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "public"}, "mode must be 'personal' or 'shared'"),
        ({"admins": "me@example.com"}, "admins must be a list of e-mail addresses"),
        ({"admins": ["not an address"]}, "admins must be a list of e-mail addresses"),
        ({"limits": {"size_px": "big"}}, "size_px must be a number of at least 0"),
        ({"limits": {"active_runs": 1.5}}, "active_runs must be a whole number"),
        ({"limits": {"trainings": 1}}, "trainings must be true or false"),
        ({"limits": {"gpus": 2}}, "has no setting 'gpus'"),
        ({"limits": {"storage_mb": float("nan")}}, "storage_mb must be a number"),
        ({"moed": "shared"}, "has no setting 'moed'"),
    ],
)
def test_a_wrong_configuration_is_one_line_naming_the_setting(values, message):
    with pytest.raises(SettingsError, match=message) as refused:
        SiteConfig.from_mapping(values)
    assert "\n" not in str(refused.value)


def test_run_limits_refuse_sizes_and_iterations_over_the_users_share_but_not_an_admins():
    limits = UserLimits(size_px=512, iterations=300)
    check_run(limits, ALICE, size_px=512, iterations=300)
    with pytest.raises(LimitError, match="1024 px is over your limit of 512 px; ask an admin"):
        check_run(limits, ALICE, size_px=1024, iterations=10)
    with pytest.raises(LimitError, match="2,000 iterations are over your limit of 300"):
        check_run(limits, ALICE, size_px=64, iterations=2000)
    check_run(limits, ADMIN, size_px=2048, iterations=5000)
    check_run(limits, PERSONAL, size_px=2048, iterations=5000)


# --- Owners


def _run_of(db, photos, viewer: Viewer, *, content="tubingen", origin=None, result="navy") -> int:
    return add_done_run(db, photos, content=content, owner=viewer.subject, origin=origin, result=result)


def test_each_user_lists_and_opens_only_their_own_runs_and_admins_see_all(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        alices, bobs = _run_of(db, photos, ALICE), _run_of(db, photos, BOB, content="chicago")
        legacy = _run_of(db, photos, PERSONAL)  # a personal gallery's run: the admins' on a shared site
        for viewer, expected in ((ALICE, [alices]), (BOB, [bobs]), (ADMIN, [legacy, bobs, alices])):
            listed = [r.id for r in gallery.list_runs(db, **gallery.owner_criteria(viewer))]
            assert listed == expected
            assert gallery.count_runs(db, **gallery.owner_criteria(viewer)) == len(expected)
        assert gallery.visible_run(db, alices, ALICE).owner == "alice-sub"
        assert gallery.visible_run(db, alices, ADMIN).id == alices
        # Another user's run id answers exactly as a missing one.
        with pytest.raises(gallery.RunNotFound) as foreign:
            gallery.visible_run(db, alices, BOB)
        with pytest.raises(gallery.RunNotFound) as missing:
            gallery.visible_run(db, 999, BOB)
        assert str(foreign.value) == str(missing.value).replace("999", str(alices))
        with pytest.raises(gallery.RunNotFound):
            gallery.visible_run(db, legacy, BOB)


def test_a_share_link_opens_a_run_read_only_until_it_is_revoked(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        run_id = _run_of(db, photos, ALICE)
        assert gallery.share_token(db, run_id) is None
        token = gallery.share_run(db, run_id)
        assert len(token) >= 32 and gallery.share_run(db, run_id) == token
        assert gallery.readable_run(db, run_id, BOB, token).id == run_id
        with pytest.raises(gallery.RunNotFound):
            gallery.visible_run(db, run_id, BOB)  # reading is not touching: no re-run, delete, compare
        with pytest.raises(gallery.RunNotFound):
            gallery.readable_run(db, run_id, BOB, token[:-1] + ("A" if token[-1] != "A" else "B"))
        gallery.unshare_run(db, run_id)
        with pytest.raises(gallery.RunNotFound):
            gallery.readable_run(db, run_id, BOB, token)
        assert gallery.share_run(db, run_id) != token  # sharing again makes a new link


def test_a_published_run_is_on_the_public_page_for_everyone(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        run_id, private = _run_of(db, photos, ALICE), _run_of(db, photos, ALICE, content="chicago")
        gallery.set_public(db, run_id)
        assert [r.id for r in gallery.list_runs(db, public=True)] == [run_id]
        assert gallery.readable_run(db, run_id, BOB).public
        with pytest.raises(gallery.RunNotFound):
            gallery.readable_run(db, private, BOB)
        gallery.set_public(db, run_id, False)
        with pytest.raises(gallery.RunNotFound):
            gallery.readable_run(db, run_id, BOB)


def test_the_same_photo_from_two_users_is_stored_once_and_each_sees_their_own_name_for_it(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        alices = _run_of(db, photos, ALICE, origin="alice-passport.jpg")
        bobs = _run_of(db, photos, BOB, origin="holiday.jpg")
        assert db["images"].count == 2  # the photo and the painting, once each
        assert gallery.get_run(db, alices).content.origin == "alice-passport.jpg"
        assert gallery.get_run(db, bobs).content.origin == "holiday.jpg"
        (bobs_summary,) = gallery.list_runs(db, owner=BOB.subject)
        assert bobs_summary.content_origin == "holiday.jpg"
        assert [i.origin for i in gallery.list_inputs(db, "content", owner=BOB.subject)] == ["holiday.jpg"]
        assert gallery.list_runs(db, content="alice-passport.jpg", owner=BOB.subject) == []
        # Alice's name for it goes with her last run that uses it; Bob's photo stays.
        gallery.delete_run(db, alices)
        assert db.execute("SELECT owner FROM image_origins WHERE origin = 'alice-passport.jpg'").fetchall() == []
        assert gallery.input_image(db, gallery.get_run(db, bobs).content.sha256) == photos["tubingen"]


def test_storage_per_user_counts_each_of_their_files_once(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        assert gallery.storage_bytes(db, ALICE.subject) == 0
        _run_of(db, photos, ALICE)
        one = gallery.storage_bytes(db, ALICE.subject)
        expected = len(photos["tubingen"]) + len(photos["starry_night"]) + len(solid_png("navy"))
        assert one == expected
        _run_of(db, photos, ALICE)  # the same inputs and result again: nothing more stored
        assert gallery.storage_bytes(db, ALICE.subject) == one
        _run_of(db, photos, BOB, content="chicago", result="olive")
        assert gallery.storage_bytes(db, ALICE.subject) == one


def test_an_import_becomes_the_importers_and_is_refused_past_their_storage(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        _run_of(db, photos, ALICE)
        gallery.export_gallery(db, tmp_path / "alice.zip", run_ids=[r.id for r in gallery.list_runs(db)])
    with gallery.connect(tmp_path / "site.db") as db:
        with pytest.raises(LimitError, match="would bring your gallery to .* over your limit of 0 MB"):
            gallery.import_gallery(db, tmp_path / "alice.zip", owner=BOB.subject, storage_limit=100)
        assert gallery.count_runs(db) == 0 and db["images"].count == 0
        imported = gallery.import_gallery(db, tmp_path / "alice.zip", owner=BOB.subject, storage_limit=10**9)
        assert [gallery.get_run(db, i).owner for i in imported] == ["bob-sub"]
        # Bob's copy doesn't make the same runs "already here" for Carol.
        carol = gallery.import_gallery(db, tmp_path / "alice.zip", owner="carol-sub")
        assert (len(carol), carol.already_here) == (1, 0)
        assert gallery.import_gallery(db, tmp_path / "alice.zip", owner="carol-sub").already_here == 1
