"""The gallery as files: one run as PNG + JSON, the whole gallery as a zip that imports back, all or nothing."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import pytest

from jaxstyle import gallery
from jaxstyle.errors import GalleryError
from tests.gallery_support import add_done_run


def test_export_run_writes_its_png_and_settings(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        run_id = add_done_run(db, photos, style_weight=77.0)
        png_path, json_path = gallery.export_run(db, run_id, tmp_path / "out")
        assert png_path.read_bytes() == gallery.run_image(db, run_id)
        document = json.loads(json_path.read_text())
        assert document["settings"] == gallery.rerun_settings(db, run_id)
        assert document["settings"]["style_weight"] == 77.0
        assert document["content"]["origin"] == "tubingen.jpg"


def test_export_then_import_round_trips_every_run(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        done = add_done_run(db, photos, styles=("starry_night", "udnie"), title="kept", tags=["x"])
        gallery.set_favorite(db, done)
        failed = add_done_run(db, photos, content="chicago")
        db.execute("DELETE FROM results WHERE run_id = ?", [failed])
        gallery.fail_run(db, failed, "boom")
        db.execute("UPDATE runs SET status = 'failed', error = 'boom' WHERE id = ?", [failed])
        assert gallery.export_gallery(db, tmp_path / "backup.zip") == 2
        originals = [gallery.get_run(db, run_id) for run_id in (done, failed)]
        images = {run_id: gallery.run_image(db, run_id) for run_id in (done, failed)}

    with gallery.connect(tmp_path / "other.db") as other:
        new_ids = gallery.import_gallery(other, tmp_path / "backup.zip")
        assert len(new_ids) == 2
        for original, new_id in zip(originals, new_ids, strict=True):
            copy = gallery.get_run(other, new_id)
            assert dataclasses_equal_except_id(original, copy)
            assert gallery.run_image(other, new_id) == images[original.id]
            for info in (copy.content, *copy.styles):
                assert gallery.input_image(other, info.sha256) == photos[Path(info.origin).stem]


def dataclasses_equal_except_id(a: gallery.Run, b: gallery.Run) -> bool:

    return dataclasses.replace(a, id=0) == dataclasses.replace(b, id=0)


def test_a_bad_export_is_refused_and_nothing_is_imported(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        add_done_run(db, photos, content="chicago")
        gallery.export_gallery(db, tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as good, zipfile.ZipFile(tmp_path / "bad.zip", "w") as bad:
        for item in good.infolist():
            data = good.read(item)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["runs"][1]["settings"]["style_weight"] = "lots"
                data = json.dumps(manifest).encode()
            bad.writestr(item, data)
    (tmp_path / "notes.zip").write_text("not a zip")

    with gallery.connect(tmp_path / "target.db") as target:
        with pytest.raises(GalleryError, match="invalid settings.*style_weight"):
            gallery.import_gallery(target, tmp_path / "bad.zip")
        with pytest.raises(GalleryError, match="not a zip"):
            gallery.import_gallery(target, tmp_path / "notes.zip")
        assert gallery.count_runs(target) == 0
        assert target.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
