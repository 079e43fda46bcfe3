"""The gallery as files: one run as PNG + JSON, the whole gallery as a zip that imports back, all or nothing."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from jaxstyle import gallery, images
from jaxstyle.errors import GalleryError
from tests.support import REPO, add_done_run, subprocess_env


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

    def lots_of_style(manifest: dict, members: dict[str, bytes]) -> None:
        manifest["runs"][1]["settings"]["style_weight"] = "lots"

    edited_export(tmp_path / "good.zip", tmp_path / "bad.zip", lots_of_style)
    (tmp_path / "notes.zip").write_text("not a zip")

    with gallery.connect(tmp_path / "target.db") as target:
        with pytest.raises(GalleryError, match="invalid settings.*style_weight"):
            gallery.import_gallery(target, tmp_path / "bad.zip")
        with pytest.raises(GalleryError, match="not a zip"):
            gallery.import_gallery(target, tmp_path / "notes.zip")
        assert gallery.count_runs(target) == 0
        assert target.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0


def edited_export(good: Path, dest: Path, edit: Callable[[dict, dict[str, bytes]], None]) -> Path:
    """A copy of the export ``good`` after ``edit(manifest, members)`` changed its manifest or its files."""
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members.pop("manifest.json"))
    edit(manifest, members)
    with zipfile.ZipFile(dest, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        # A number JSON can hold but Python's floats can't (1e400) is written as a marker string.
        archive.writestr("manifest.json", json.dumps(manifest).replace('"__1e400__"', "1e400"))
    return dest


def test_an_import_whose_result_is_over_the_pixel_limit_is_refused_in_one_line_with_exit_2(
    gallery_path, photos, tmp_path, huge_png
):
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        run_id = add_done_run(db, photos, content="chicago")
        gallery.export_gallery(db, tmp_path / "good.zip")

    def huge_result(manifest: dict, members: dict[str, bytes]) -> None:
        manifest["runs"][1]["image"] = "results/huge.png"
        members["results/huge.png"] = huge_png

    huge_zip = edited_export(tmp_path / "good.zip", tmp_path / "huge.zip", huge_result)
    target = tmp_path / "target.db"
    result = subprocess.run(
        [sys.executable, "-m", "jaxstyle", "gallery", "--gallery", str(target), "import", str(huge_zip)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and "Warning" not in result.stderr
    assert result.stderr.startswith(f"error: {huge_zip}: run {run_id} result image: ")
    assert "10000x10000 px (100 megapixels); the limit is 80 megapixels" in result.stderr
    with gallery.connect(target) as db:  # nothing imported, not even the first run or the inputs
        assert gallery.count_runs(db) == 0
        assert db["images"].count == 0 and db["results"].count == 0


def test_an_import_whose_input_is_over_the_pixel_limit_is_refused(gallery_path, photos, tmp_path, huge_png):
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        gallery.export_gallery(db, tmp_path / "good.zip")

    def huge_content(manifest: dict, members: dict[str, bytes]) -> None:
        # A consistent export (hash and file name match the bytes) whose content image is huge.
        old_sha, new_sha = manifest["runs"][0]["content"]["sha256"], images.sha256_hex(huge_png)
        del members[manifest["inputs"][old_sha]["file"]]
        info = manifest["inputs"].pop(old_sha)
        manifest["inputs"][new_sha] = {**info, "file": f"inputs/{new_sha}.png"}
        members[f"inputs/{new_sha}.png"] = huge_png
        manifest["runs"][0]["content"]["sha256"] = new_sha

    huge_zip = edited_export(tmp_path / "good.zip", tmp_path / "huge.zip", huge_content)
    with gallery.connect(tmp_path / "target.db") as target:
        with pytest.raises(GalleryError, match=r"tubingen\.jpg.*10000x10000 px \(100 megapixels\)"):
            gallery.import_gallery(target, huge_zip)
        assert gallery.count_runs(target) == 0
        assert target["images"].count == 0


# --- Hostile ZIPs: refused from what they claim, under a budget, in one line, nothing imported


def _manifest_edit(edit: Callable[[dict], None]) -> Callable[[dict, dict[str, bytes]], None]:
    return lambda manifest, members: edit(manifest)


def _set(path: tuple, value) -> Callable[[dict], None]:
    def edit(manifest: dict) -> None:
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


HOSTILE_MANIFESTS = {
    "a 400-digit setting": (_set(("runs", 0, "settings", "style_weight"), int("9" * 400)), "a number of 400 digits"),
    "a 30-digit step count": (_set(("runs", 0, "step"), 10**30), "a number of 31 digits"),
    "a step count of 10^15": (_set(("runs", 0, "step"), 10**15), "step must be a whole number from 0"),
    "a negative step count": (_set(("runs", 0, "step"), -5), "step must be a whole number from 0"),
    "a boolean step count": (_set(("runs", 0, "total_steps"), True), "total_steps must be a whole number"),
    "a NaN blend": (_set(("runs", 0, "styles", 0, "blend"), float("nan")), "NaN is not a value an export holds"),
    "an infinite loss": (_set(("runs", 0, "final_losses", "total"), float("inf")), "Infinity is not a value"),
    "a negative blend": (_set(("runs", 0, "styles", 0, "blend"), -1.0), "a negative style blend"),
    "year 1 in a time zone": (_set(("runs", 0, "created"), "0001-01-01T00:00:00+05:00"), "an invalid time"),
    "a number as the finish time": (_set(("runs", 0, "finished"), 12), "finished has the wrong type"),
    "version true": (_set(("version",), True), "export version 'True'"),
    "a 19-digit negative number": (_set(("runs", 0, "total_steps"), -(10**18)), "a number of 19 digits"),
    "1e400 as a weight": (_set(("runs", 0, "settings", "tv_weight"), "__1e400__"), "the number 1e400"),
    "a blend that is a string": (_set(("runs", 0, "styles", 0, "blend"), "1"), "style blend has the wrong type"),
    "a step count of 1.5": (_set(("runs", 0, "step"), 1.5), "step must be a whole number"),
}


@pytest.mark.parametrize("case", list(HOSTILE_MANIFESTS))
def test_a_hostile_manifest_value_is_refused_in_one_line(case, gallery_path, photos, tmp_path):
    edit, message = HOSTILE_MANIFESTS[case]
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        gallery.export_gallery(db, tmp_path / "good.zip")
    bad = edited_export(tmp_path / "good.zip", tmp_path / "bad.zip", _manifest_edit(edit))
    with gallery.connect(tmp_path / "target.db") as target:
        with pytest.raises(GalleryError, match=message.replace("^", r"\^")) as refused:
            gallery.import_gallery(target, bad)
        assert "\n" not in str(refused.value) and str(bad) in str(refused.value)
        assert gallery.count_runs(target) == 0 and target["images"].count == 0


def _zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "nesting",
    [b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 200_000 + b"1" + b"}" * 200_000, b'{"runs":' + b"[{}," * 5000],
    ids=["lists 200,000 deep", "objects 200,000 deep", "lists 5,000 deep, unclosed"],
)
def test_a_manifest_nested_too_deep_is_a_damaged_manifest(nesting, tmp_path):
    deep = _zip_with(tmp_path / "deep.zip", {"manifest.json": nesting})
    with gallery.connect(tmp_path / "target.db") as target:
        damaged = "manifest.json is (damaged .nested too deeply|not valid JSON)"
        with pytest.raises(GalleryError, match=damaged) as refused:
            gallery.import_gallery(target, deep)
        assert "\n" not in str(refused.value) and gallery.count_runs(target) == 0


def test_members_are_refused_from_their_declared_size_before_they_are_inflated(
    gallery_path, photos, tmp_path, monkeypatch
):
    """A 100 KB ZIP whose manifest inflates to 100 MB is refused from the ZIP's directory, without
    inflating it (zipfile's reader is never opened on it); likewise an image member past its cap."""
    bomb = _zip_with(tmp_path / "bomb.zip", {"manifest.json": b" " * (100 * 2**20)})
    assert bomb.stat().st_size < 200_000
    opened: list[str] = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(
        zipfile.ZipFile, "open", lambda self, name, *a, **k: opened.append(str(name)) or real_open(self, name, *a, **k)
    )
    too_big = r"manifest\.json\) inflates to 100 MB; the limit is 64 MB"
    with gallery.connect(tmp_path / "target.db") as target, pytest.raises(GalleryError, match=too_big):
        gallery.import_gallery(target, bomb)
    assert opened == []

    with gallery.connect(gallery_path) as db:
        run_id = add_done_run(db, photos)
        gallery.export_gallery(db, tmp_path / "good.zip")
    monkeypatch.setattr(gallery.imports, "MAX_IMAGE_BYTES", 1000)
    with gallery.connect(tmp_path / "target.db") as target:
        with pytest.raises(GalleryError, match="inflates to .*; the limit is 1,000 bytes"):
            gallery.import_gallery(target, tmp_path / "good.zip")
        assert gallery.count_runs(target) == 0
    monkeypatch.setattr(gallery.imports, "MAX_IMAGE_BYTES", 50 * 2**20)
    monkeypatch.setattr(gallery.imports, "MAX_RUNS", 0)
    with gallery.connect(tmp_path / "target.db") as target, pytest.raises(GalleryError, match="holds 1 runs"):
        gallery.import_gallery(target, tmp_path / "good.zip")
    monkeypatch.setattr(gallery.imports, "MAX_TOTAL_BYTES", 10)
    with gallery.connect(tmp_path / "target.db") as target, pytest.raises(GalleryError, match="an import takes at"):
        gallery.import_gallery(target, tmp_path / "good.zip")
    assert run_id


def test_importing_the_same_zip_twice_adds_nothing_the_second_time(gallery_path, photos, tmp_path, capsys):
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        add_done_run(db, photos, content="chicago")
        gallery.export_gallery(db, tmp_path / "export.zip")
    target = tmp_path / "target.db"
    with gallery.connect(target) as db:
        first = gallery.import_gallery(db, tmp_path / "export.zip")
        images_after_first = db["images"].count
        again = gallery.import_gallery(db, tmp_path / "export.zip")
        assert (len(first), first.already_here) == (2, 0)
        assert (list(again), again.already_here, again.summary()) == ([], 2, "imported 0 runs, 2 already here")
        assert gallery.count_runs(db) == 2 and db["images"].count == images_after_first
    # Into the gallery it came from: every run is already there.
    with gallery.connect(gallery_path) as db:
        assert gallery.import_gallery(db, tmp_path / "export.zip").already_here == 2
        assert gallery.count_runs(db) == 2

    # A run that differs in a setting is a new run; one that differs only in its title is not.
    def retitled_and_reweighted(manifest: dict, members: dict[str, bytes]) -> None:
        manifest["runs"][0]["title"] = "another title"
        manifest["runs"][1]["settings"]["style_weight"] = 7.5

    edited = edited_export(tmp_path / "export.zip", tmp_path / "edited.zip", retitled_and_reweighted)
    with gallery.connect(target) as db:
        imported = gallery.import_gallery(db, edited)
        assert (len(imported), imported.already_here) == (1, 1)


def test_a_member_compressed_with_bzip2_or_lzma_is_refused_before_it_is_inflated(gallery_path, photos, tmp_path):
    """zipfile bounds each read of a deflated member; a bzip2 or LZMA one can inflate without bound
    in a single read (1 GB of zeros is a 1 kB bzip2 stream), so it is refused from the directory."""
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        gallery.export_gallery(db, tmp_path / "good.zip")
    for method, name in ((zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")):
        with zipfile.ZipFile(tmp_path / "good.zip") as good, zipfile.ZipFile(tmp_path / f"{name}.zip", "w") as bad:
            for item in good.infolist():
                bad.writestr(item.filename, good.read(item), compress_type=method)
        with gallery.connect(tmp_path / "target.db") as target:
            with pytest.raises(GalleryError, match=f"{name}.zip: the manifest .* compressed with method {method}"):
                gallery.import_gallery(target, tmp_path / f"{name}.zip")
            assert gallery.count_runs(target) == 0


def _noise_png(side: int, seed: int = 0) -> bytes:
    import numpy as np
    from PIL import Image

    from tests.support import png_of

    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return png_of(Image.fromarray(pixels))


def _runs_sharing_one_result(good: Path, dest: Path, count: int, result: bytes) -> Path:
    """``good``'s first run ``count`` times (each with its own seed, so each is a run of its own),
    all pointing at one result member: the amplification attack of a crafted ZIP."""

    def many(manifest: dict, members: dict[str, bytes]) -> None:
        for name in [name for name in members if name.startswith("results/")]:
            del members[name]
        members["results/shared.png"] = result
        template = manifest["runs"][0]
        manifest["runs"] = [
            {**template, "id": i + 1, "image": "results/shared.png", "settings": {**template["settings"], "seed": i}}
            for i in range(count)
        ]

    return edited_export(good, dest, many)


def _gallery_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_runs_that_share_one_image_store_it_once_and_decode_it_once(gallery_path, photos, tmp_path, monkeypatch):
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        gallery.export_gallery(db, tmp_path / "good.zip")
    image = _noise_png(600)
    assert len(image) > 1_000_000
    one = _runs_sharing_one_result(tmp_path / "good.zip", tmp_path / "one.zip", 1, image)
    many = _runs_sharing_one_result(tmp_path / "good.zip", tmp_path / "many.zip", 300, image)
    decoded: list[str] = []
    real_check = gallery.values.checked_thumbnail
    monkeypatch.setattr(
        gallery.values, "checked_thumbnail", lambda data, what: decoded.append(what) or real_check(data, what)
    )

    with gallery.connect(tmp_path / "one.db") as db:
        assert len(gallery.import_gallery(db, one)) == 1
    with gallery.connect(tmp_path / "many.db") as db:
        decoded.clear()
        imported = gallery.import_gallery(db, many)
        assert len(imported) == 300
        assert len(decoded) == 3  # the photo, the painting and the one result: not 300 results
        assert db["result_images"].count == 1
        assert {gallery.run_image(db, run_id) for run_id in imported} == {image}
        # Deleting runs keeps the image while one run still uses it.
        for run_id in imported[:-1]:
            gallery.delete_run(db, run_id)
        assert gallery.run_image(db, imported[-1]) == image
        gallery.delete_run(db, imported[-1])
        assert db["result_images"].count == 0 and db["images"].count == 0
    with gallery.connect(tmp_path / "many2.db") as db:
        gallery.import_gallery(db, many)
    # 299 more runs cost their rows (a few kB each), not 299 more copies of a 1 MB image.
    grown = _gallery_bytes(tmp_path / "many2.db") - _gallery_bytes(tmp_path / "one.db")
    assert grown < 299 * 4096, grown


def test_an_export_of_runs_that_share_a_result_holds_it_once_and_imports_back(gallery_path, photos, tmp_path):
    with gallery.connect(gallery_path) as db:
        first, second = add_done_run(db, photos), add_done_run(db, photos, content="chicago")
        assert gallery.run_image(db, first) == gallery.run_image(db, second)  # the same navy PNG
        gallery.export_gallery(db, tmp_path / "export.zip")
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        results = [name for name in archive.namelist() if name.startswith("results/")]
    assert len(results) == 1
    with gallery.connect(tmp_path / "target.db") as db:
        imported = gallery.import_gallery(db, tmp_path / "export.zip")
        assert len(imported) == 2 and db["result_images"].count == 1


# The peak is the kernel's VmHWM of this process, restarted just before the import: ru_maxrss
# would carry the peak of the (large) pytest process it was forked from across exec.
PEAK_SCRIPT = """
import sys
from jaxstyle import gallery
from jaxstyle.errors import GalleryError

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

with gallery.connect(sys.argv[1]) as db:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak restarts from what is resident now
    before = status("VmRSS")
    try:
        print(gallery.import_gallery(db, sys.argv[2]).summary())
    except GalleryError as error:
        print("refused:", error)
print(status("VmHWM") - before)
print(status("VmHWM"))
"""
# What the budget allows: 1 GiB, plus the largest image the upload guard lets through, decoded (RGBA).
PEAK_BUDGET = 2**30 + images.MAX_INPUT_PIXELS * 4


def _import_peak(zip_path: Path, target: Path) -> tuple[str, int, int]:
    """A fresh process imports ``zip_path``: what it said, how much its peak memory grew meanwhile,
    and the process's peak since the import began (Python, the gallery's modules and the import)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(target), str(zip_path)],
        capture_output=True, text=True, env=subprocess_env(), cwd=REPO, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said, grown, peak = done.stdout.strip().rsplit("\n", 2)
    return said, int(grown), int(peak)


def test_hostile_imports_stay_within_their_memory_budget(gallery_path, photos, tmp_path):
    """The issue's cases, each in a fresh process: refused or imported, the peak stays under 1 GiB
    plus the largest allowed image. The first two took 2.36 GB and ~1.5 GB before the budget."""
    with gallery.connect(gallery_path) as db:
        add_done_run(db, photos)
        gallery.export_gallery(db, tmp_path / "good.zip")
    from PIL import Image

    from tests.support import png_of

    side = int(images.MAX_INPUT_PIXELS**0.5)  # 8,944 px square: just under 80 megapixels
    just_allowed = png_of(Image.new("1", (side, side)))
    bomb = zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED)
    with bomb, bomb.open("manifest.json", "w") as member:  # 1 GiB of spaces, written in pieces
        for _ in range(1024):
            member.write(b" " * 2**20)
    cases = {
        "bomb": (tmp_path / "bomb.zip", "refused:", 64 * 2**20),
        "500 runs, one 3 MB image": (
            _runs_sharing_one_result(tmp_path / "good.zip", tmp_path / "shared.zip", 500, _noise_png(1000)),
            "imported 500 runs", 300 * 2**20,
        ),
        "10 runs, one 80-megapixel image": (
            _runs_sharing_one_result(tmp_path / "good.zip", tmp_path / "large.zip", 10, just_allowed),
            "imported 10 runs", PEAK_BUDGET,
        ),
    }  # fmt: skip
    assert (tmp_path / "bomb.zip").stat().st_size < 2 * 2**20
    for case, (zip_path, expected, budget) in cases.items():
        said, grown, peak = _import_peak(zip_path, tmp_path / f"{zip_path.stem}.db")
        assert said.startswith(expected), (case, said)
        assert "\n" not in said
        print(f"{case}: {said[:40]}… grew {grown / 2**20:.0f} MB, peak {peak / 2**20:.0f} MB")
        assert grown < budget and peak < PEAK_BUDGET, (case, grown, peak)
