"""Reading and editing the gallery: filters, pages, comparisons, re-runs, titles, tags, favorites, deletes."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from jaxstyle import gallery
from jaxstyle.errors import GalleryError
from jaxstyle.settings import TransferSettings
from tests.support import SETTINGS, add_done_run, png_of, solid_png


def test_filters_match_the_runs_they_name(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        a = add_done_run(db, photos, content="tubingen", styles=("starry_night",), title="Night river", tags=["blue"])
        b = add_done_run(db, photos, content="chicago", styles=("udnie", "starry_night"), title="City", style_weight=50)
        c = add_done_run(db, photos, content="chicago", styles=("the_scream",), title="River scream", tags=["red"])
        sha = gallery.store_image(db, photos["golden_gate"], origin_kind="file", origin="golden_gate.jpg")
        d = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], group_id="g1", title="Queued")
        gallery.set_favorite(db, b)
        gallery.set_tags(db, b, "blue, city")
        db.execute("UPDATE runs SET created = '2024-01-15T12:00:00.000000+00:00' WHERE id = ?", [a])

        def ids(**filters) -> list[int]:
            found = [r.id for r in gallery.list_runs(db, **filters)]
            assert gallery.count_runs(db, **filters) == len(found)
            # The same filter as a RunFilter object, as the CLI passes it.
            run_filter = gallery.RunFilter(**filters)
            assert [r.id for r in gallery.list_runs(db, run_filter)] == found
            assert gallery.count_runs(db, run_filter) == len(found)
            return sorted(found)

        assert ids() == [a, b, c, d]
        assert ids(style="starry_night") == [a, b]
        assert ids(style=gallery.get_run(db, c).styles[0].sha256) == [c]
        assert ids(content="chicago.jpg") == [b, c]
        assert ids(tag="blue") == [a, b]
        assert ids(favorite=True) == [b] and ids(favorite=False) == [a, c, d]
        assert ids(status="queued") == [d] and ids(status=["done", "queued"]) == [a, b, c, d]
        assert ids(text="river") == [a, c] and ids(text="%") == []
        assert ids(group_id="g1") == [d]
        assert ids(until="2024-01-15") == [a] and ids(since=date(2024, 1, 16)) == [b, c, d]
        assert ids(since="2024-01-15T11:00:00+00:00", until="2024-01-15T13:00:00+00:00") == [a]
        assert ids(style="starry_night", content="chicago.jpg") == [b]
        summary = gallery.list_runs(db, favorite=True)[0]
        assert (summary.content_origin, summary.style_origins, summary.tags) == (
            "chicago.jpg",
            ("udnie", "starry_night"),
            ("blue", "city"),
        )
        assert summary.style_weight == 50 and summary.has_image and summary.final_loss == pytest.approx(1.0 + b / 100)
        assert [r.id for r in gallery.list_runs(db, order="-style_weight", status="done")] == [b, c, a]
        assert [i.origin for i in gallery.list_inputs(db, "style")] == [
            "golden_gate.jpg",
            "starry_night",
            "the_scream",
            "udnie",
        ]
        assert [i.origin for i in gallery.list_inputs(db, "content")] == [
            "chicago.jpg",
            "golden_gate.jpg",
            "tubingen.jpg",
        ]


def test_pages_cover_every_run_once_in_order(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        made = [add_done_run(db, photos) for _ in range(7)]
        pages = [gallery.list_runs(db, limit=3, offset=offset) for offset in (0, 3, 6, 9)]
        assert [len(page) for page in pages] == [3, 3, 1, 0]
        assert [r.id for page in pages for r in page] == made[::-1]  # newest first
        assert [r.id for r in gallery.list_runs(db, order="oldest", limit=2)] == made[:2]


def test_compare_shows_settings_side_by_side_and_what_differs(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        a = add_done_run(db, photos, style_weight=10.0)
        b = add_done_run(db, photos, style_weight=100.0, seed=7)
        comparison = gallery.compare_runs(db, [a, b])
        assert [r.id for r in comparison.runs] == [a, b]
        assert comparison.settings["style_weight"] == [10.0, 100.0]
        assert comparison.settings["size_px"] == [64, 64]
        assert comparison.differing == ["style_weight", "seed"]
        assert comparison.loss_histories[a] == gallery.get_run(db, a).loss_history


def test_rerun_starts_from_the_stored_settings(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, SETTINGS.to_dict(), content_sha=sha, style_shas=[sha, sha])
        again = TransferSettings.from_dict(gallery.rerun_settings(db, run_id))
        assert again == SETTINGS
        assert again.replace(seed=5).seed == 5


def test_title_tags_and_favorite_can_be_changed(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        run_id = add_done_run(db, photos)
        gallery.set_title(db, run_id, "  Best one ")
        gallery.set_tags(db, run_id, ["a", "b", "a"])
        gallery.set_favorite(db, run_id, True)
        gallery.set_favorite(db, run_id, False)
        run = gallery.get_run(db, run_id)
        assert (run.title, run.tags, run.favorite) == ("Best one", ("a", "b"), False)
        with pytest.raises(gallery.RunNotFound):
            gallery.set_title(db, run_id + 1, "x")


def test_delete_removes_the_run_and_the_images_no_other_run_uses(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        first = add_done_run(db, photos, content="tubingen", styles=("starry_night",))
        second = add_done_run(db, photos, content="chicago", styles=("starry_night", "udnie"))
        gallery.delete_run(db, first)
        origins = {row[0] for row in db.execute("SELECT origin FROM images")}
        assert origins == {"chicago.jpg", "starry_night", "udnie"}  # the shared style stays
        assert gallery.get_run(db, second).has_image
        gallery.delete_run(db, second)
        for table in ("runs", "images", "run_styles", "results", "previews"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
        with pytest.raises(gallery.RunNotFound):
            gallery.delete_run(db, second)


def test_a_running_run_is_only_deleted_when_forced(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        gallery.record_progress(db, run_id, step=1, total_steps=5, losses={"total": 1.0}, preview_png=solid_png("red"))
        with pytest.raises(GalleryError, match="still running"):
            gallery.delete_run(db, run_id)
        gallery.delete_run(db, run_id, force=True)
        assert db.execute("SELECT COUNT(*) FROM previews").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0


def test_fifty_thumbnails_are_small(gallery_path, shared_data):
    with Image.open(shared_data / "content" / "tubingen.jpg") as photo:
        result = photo.convert("RGB")
        result.thumbnail((512, 512))
    result_png = png_of(result)
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, png_of(result.resize((64, 48))), origin_kind="file", origin="t.png")
        ids = []
        for _ in range(50):
            run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
            gallery.finish_run(
                db, run_id, image_png=result_png, initial_losses={}, final_losses={}, loss_history=[],
                compile_s=0, run_s=0, device="cpu", weights_source="random",
            )  # fmt: skip
            ids.append(run_id)
        page = gallery.thumbnails(db, [r.id for r in gallery.list_runs(db, limit=50)])
    total_bytes = sum(len(data) for data in page.values())
    print(f"\n50 thumbnails: {total_bytes / 1024:.0f} KiB; one 512 px result PNG: {len(result_png) / 1024:.0f} KiB")
    assert sorted(page) == ids
    assert total_bytes < 50 * 32 * 1024  # under 32 KiB each on average
    with Image.open(io.BytesIO(page[ids[0]])) as thumbnail:
        assert max(thumbnail.size) == gallery.THUMBNAIL_PX
