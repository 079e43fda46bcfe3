"""A run's life in the gallery: inputs stored once, added, started, progress, finished or failed."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from jaxstyle import gallery
from jaxstyle.errors import GalleryError, ImageError, SettingsError
from jaxstyle.settings import TransferSettings
from tests.support import SETTINGS, add_done_run, png_of, solid_png


def test_every_field_of_a_run_round_trips(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        content_sha = gallery.store_image(db, photos["tubingen"], origin_kind="upload", origin="holiday.jpg")
        style_shas = [
            gallery.store_image(db, photos["starry_night"], origin_kind="catalog", origin="starry_night"),
            gallery.store_image(db, photos["great_wave"], origin_kind="url", origin="https://example.org/wave.jpg"),
        ]
        run_id = gallery.add_run(
            db,
            SETTINGS.to_dict(),
            content_sha=content_sha,
            style_shas=style_shas,
            title="  Tübingen at night ",
            tags=["night", "sweep", "night", " "],
            group_id="sweep-7",
            weights_source="sha256:abc",
            device="cpu",
        )
        assert gallery.get_run(db, run_id).status == "queued"
        assert gallery.start_run(db, run_id, total_steps=26)
        gallery.record_progress(
            db, run_id, step=13, total_steps=26, losses={"total": 5.0, "content": 2.0}, preview_png=solid_png("red")
        )
        running = gallery.get_run(db, run_id)
        assert (running.status, running.step, running.total_steps) == ("running", 13, 26)
        assert running.loss_history == [{"step": 13, "total": 5.0, "content": 2.0}]
        assert gallery.run_preview(db, run_id) == solid_png("red")

        result = png_of(Image.open(io.BytesIO(photos["tubingen"])).convert("RGB"))
        history = [
            {"step": step, "size_px": 64, "total": 10.0 / step, "content": 1.0, "style": 2.0, "tv": 0.1}
            for step in range(1, 27)
        ]
        gallery.finish_run(
            db,
            run_id,
            image_png=result,
            initial_losses={"total": 12.0, "content": 0.0, "style": 11.0, "tv": 1.0},
            final_losses={"total": 0.4, "content": 0.1, "style": 0.2, "tv": 0.1},
            loss_history=history,
            compile_s=3.25,
            run_s=7.5,
            device="cpu (1 device)",
            weights_source="random fallback (offline)",
        )
        gallery.set_favorite(db, run_id)
        run = gallery.get_run(db, run_id)

        assert run.id == run_id and run.created.tzinfo is not None
        assert (run.status, run.error, run.title) == ("done", "", "Tübingen at night")
        assert run.tags == ("night", "sweep") and run.favorite and run.group_id == "sweep-7"
        assert run.settings == SETTINGS.to_dict()
        assert TransferSettings.from_dict(run.settings) == SETTINGS
        assert (run.weights_source, run.device) == ("random fallback (offline)", "cpu (1 device)")
        assert (run.compile_s, run.run_s) == (3.25, 7.5)
        assert run.initial_losses == {"total": 12.0, "content": 0.0, "style": 11.0, "tv": 1.0}
        assert run.final_losses == {"total": 0.4, "content": 0.1, "style": 0.2, "tv": 0.1} and run.final_loss == 0.4
        assert run.loss_history == history
        assert run.content == gallery.ImageInfo(content_sha, "upload", "holiday.jpg", 64, 48)
        assert [(s.sha256, s.origin_kind, s.origin, s.blend) for s in run.styles] == [
            (style_shas[0], "catalog", "starry_night", 0.75),
            (style_shas[1], "url", "https://example.org/wave.jpg", 0.25),
        ]
        assert (run.step, run.total_steps, run.has_image) == (26, 26, True)
        assert run.finished is not None and run.finished >= run.created
        assert gallery.run_image(db, run_id) == result
        assert gallery.run_preview(db, run_id) is None  # previews are dropped once the result is in
        assert gallery.input_image(db, content_sha) == photos["tubingen"]
        with Image.open(io.BytesIO(gallery.run_thumbnail(db, run_id))) as thumbnail:
            assert thumbnail.format == "JPEG" and max(thumbnail.size) <= gallery.THUMBNAIL_PX
        # The main settings are real columns too (for filters and sorting).
        row = db.execute("SELECT size_px, style_weight, optimizer, seed, preserve_color FROM runs").fetchone()
        assert row == (64, 300.0, "lbfgs", 1234, "luminance")
        assert json.loads(json.dumps(run.to_dict()))["settings"] == SETTINGS.to_dict()


def test_the_same_input_is_stored_once(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        first = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        again = gallery.store_image(db, photos["udnie"], origin_kind="upload", origin="copy.jpg")
        assert first == again
        assert db.execute("SELECT COUNT(*), origin FROM images").fetchone() == (1, "udnie")


def test_bad_input_is_a_clear_error(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        with pytest.raises(ImageError, match="notes.txt"):
            gallery.store_image(db, b"hello", origin_kind="upload", origin="notes.txt")
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        with pytest.raises(GalleryError, match="not in the gallery"):
            gallery.add_run(db, SETTINGS.to_dict(), content_sha="0" * 64, style_shas=[sha, sha])
        with pytest.raises(SettingsError, match="style_weight"):
            gallery.add_run(db, {"style_weight": -1}, content_sha=sha, style_shas=[sha])
        with pytest.raises(SettingsError, match="style_blend"):
            gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], style_blend=[1.0, 2.0])
        with pytest.raises(gallery.RunNotFound, match="no run 99"):
            gallery.get_run(db, 99)
        with pytest.raises(GalleryError, match="unknown order"):
            gallery.list_runs(db, order="prettiest")
        with pytest.raises(GalleryError, match="unknown status"):
            gallery.list_runs(db, status="lost")
        with pytest.raises(ImageError):
            run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha])
            gallery.finish_run(
                db, run_id, image_png=b"not a png", initial_losses={}, final_losses={}, loss_history=[],
                compile_s=0, run_s=0, device="", weights_source="",
            )  # fmt: skip
        assert gallery.get_run(db, run_id).status == "queued"  # nothing half-written
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_failed_and_cancelled_runs_keep_why_and_a_finished_run_stays_done(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        failed = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        cancelled = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha])
        assert gallery.fail_run(db, failed, "out of memory at 2048 px")
        assert gallery.fail_run(db, cancelled, "stopped by the user", cancelled=True)
        assert (gallery.get_run(db, failed).status, gallery.get_run(db, failed).error) == (
            "failed",
            "out of memory at 2048 px",
        )
        assert gallery.get_run(db, cancelled).status == "cancelled"
        assert not gallery.start_run(db, cancelled)  # cancelled while queued: the worker must skip it
        assert not gallery.record_progress(db, cancelled, step=1, total_steps=2, losses={"total": 1.0})
        done = add_done_run(db, photos)
        assert not gallery.fail_run(db, done, "late failure")
        assert gallery.get_run(db, done).status == "done"


def test_a_finished_image_is_kept_even_after_the_run_was_marked_failed(gallery_path, photos):
    with gallery.connect(gallery_path) as db:
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        gallery.fail_run(db, run_id, "interrupted: no sign of life")  # e.g. a slow step looked dead
        gallery.finish_run(
            db, run_id, image_png=solid_png("gold"), initial_losses={}, final_losses={"total": 1.0},
            loss_history=[], compile_s=1, run_s=1, device="cpu", weights_source="random",
        )  # fmt: skip
        run = gallery.get_run(db, run_id)
        assert (run.status, run.error, run.has_image) == ("done", "", True)


def test_every_image_entering_the_gallery_passes_the_upload_guard(gallery_path, photos, huge_png):
    truncated = photos["udnie"][: len(photos["udnie"]) // 2]
    with gallery.connect(gallery_path) as db:
        with pytest.raises(ImageError, match=r"huge\.png: the image is 10000x10000 px \(100 megapixels\)"):
            gallery.store_image(db, huge_png, origin_kind="upload", origin="huge.png")
        with pytest.raises(ImageError, match=r"half\.jpg: the image is truncated or corrupt"):
            gallery.store_image(db, truncated, origin_kind="upload", origin="half.jpg")
        sha = gallery.store_image(db, photos["udnie"], origin_kind="catalog", origin="udnie")
        run_id = gallery.add_run(db, {}, content_sha=sha, style_shas=[sha], status="running")
        with pytest.raises(ImageError, match=rf"the result of run {run_id}: the image is 10000x10000 px"):
            gallery.finish_run(
                db, run_id, image_png=huge_png, initial_losses={}, final_losses={}, loss_history=[],
                compile_s=0, run_s=0, device="cpu", weights_source="random",
            )  # fmt: skip
        assert gallery.get_run(db, run_id).status == "running"  # nothing written
        assert db["images"].count == 1 and db["results"].count == 0
