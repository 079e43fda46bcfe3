"""Instant models as files and runs: an instant run stored in the gallery, bad requests and
damaged, foreign or renamed model files refused, and the CLI's train (killed and resumed) and
models commands (jaxstyle.instant). Tiny models on real photos and paintings from ../shared/data;
the trained model is conftest's ``trained``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest.mock import ANY

import jax
import numpy as np
import pytest

from jaxstyle import gallery, images, inputs
from jaxstyle.errors import SettingsError
from jaxstyle.instant import models, train
from jaxstyle.instant.paint import Painter
from jaxstyle.instant.run import run_instant
from tests.instant_support import SMALL, leaves_equal
from tests.support import CONTENT_DIR, REPO


def test_an_instant_run_is_stored_in_the_gallery_with_its_method_model_and_losses(
    trained, in_process, content_path, tmp_path
):
    model, _ = trained
    gallery_path = tmp_path / "runs.db"
    content = inputs.from_path(content_path)
    run = run_instant(
        Painter(model), content, ["starry_night", "great_wave"], [3, 1], 64, in_process, gallery_path=gallery_path
    )
    assert max(run.result.image.size) == 64 and run.result.run_s > 0
    with gallery.connect(gallery_path) as db:
        stored = gallery.get_run(db, run.run_id)
        assert (stored.method, stored.model, stored.status) == ("instant", "two", "done")
        assert [s.origin for s in stored.styles] == ["two/starry_night", "two/great_wave"]
        assert [s.blend for s in stored.styles] == [0.75, 0.25]
        assert stored.final_losses == pytest.approx(run.losses) and stored.initial_losses["content"] == 0.0
        assert stored.title == "tubingen × The Starry Night + The Great Wave off Kanagawa"
        summary = gallery.list_runs(db)[0]
        assert (summary.method, summary.model) == ("instant", "two")
        # An export carries the method and model back in.
        zip_path = tmp_path / "all.zip"
        gallery.export_gallery(db, zip_path)
    with gallery.connect(tmp_path / "other.db") as db:
        gallery.import_gallery(db, zip_path)
        (again,) = [gallery.get_run(db, r.id) for r in gallery.list_runs(db)]
        assert (again.method, again.model) == ("instant", "two")


def test_bad_requests_are_refused_with_a_clear_error_and_nothing_stored(
    trained, photo_dir, paintings, fallback_weights, in_process, content_path, tmp_path
):
    model, gallery_path = trained
    painter = Painter(model)
    photo = images.open_image(content_path)
    with pytest.raises(models.ModelError, match="does not hold the style.*the_scream"):
        painter.paint(photo, ["the_scream"], size_px=48)
    with pytest.raises(SettingsError):
        painter.paint(photo, ["starry_night"], [1, 2], size_px=48)  # two weights, one style
    with pytest.raises(SettingsError):
        painter.paint(photo, ["starry_night"], size_px=10_000)
    runs_db = tmp_path / "runs.db"
    with pytest.raises(models.ModelError):
        run_instant(painter, inputs.from_path(content_path), ["nope"], None, 48, in_process, gallery_path=runs_db)
    with gallery.connect(runs_db) as db:
        assert gallery.count_runs(db) == 0
    with pytest.raises(models.ModelError, match="no model called 'absent'.*two"):
        models.load_model("absent", gallery_path)
    with pytest.raises(models.ModelError, match="model name"):
        models.model_path("../escape", gallery_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.jpg").write_text("not a photo")
    with pytest.raises(models.ModelError, match="no usable photo"):
        train.train("x", [("udnie", paintings["udnie"])], empty, SMALL, fallback_weights, gallery_path=runs_db)
    with pytest.raises(models.ModelError, match="exists already"):
        train.train("two", [("udnie", paintings["udnie"])], photo_dir, SMALL, fallback_weights,
                    gallery_path=gallery_path)  # fmt: skip


def test_damaged_or_foreign_model_files_are_refused(trained, tmp_path):
    model, gallery_path = trained
    good = models.model_path("two", gallery_path).read_bytes()
    cases = {
        "truncated": good[: len(good) // 2],
        "not msgpack": b"PK\x03\x04 a zip, say",
        "empty": b"",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.jaxstyle-model"
        path.write_bytes(data)
        with pytest.raises(models.ModelError):
            models.read_model(path)
        with pytest.raises(models.ModelError):
            models.import_model(path, tmp_path / "other.db")
    assert models.list_models(tmp_path / "other.db") == []
    for name in ("not msgpack", "empty"):
        with pytest.raises(models.ModelError):
            models.read_record(tmp_path / f"{name}.jaxstyle-model")
    exported = models.export_model("two", tmp_path, gallery_path)
    with pytest.raises(models.ModelError, match="exists already"):
        models.import_model(exported, gallery_path)
    copies = tmp_path / "copies.db"
    copy = models.import_model(exported, copies, name="two-copy")
    assert copy.styles == model.styles and leaves_equal(copy.net, model.net)
    (models.models_dir(copies) / "empty.jaxstyle-model").write_bytes(cases["empty"])
    (models.models_dir(copies) / "cut.jaxstyle-model").write_bytes(cases["truncated"])
    assert [m.name for m in models.list_models(copies)] == ["two-copy"]  # damaged files are left out
    # Records alone: a file cut after its record is listed (loading it is refused, above).
    assert {name: meta["styles"] for name, meta in models.list_records(copies).items()} == {
        "cut": list(model.styles),
        "two-copy": list(model.styles),
    }
    models.delete_model("two-copy", copies)
    assert models.list_models(copies) == [] and [m.name for m in models.list_models(gallery_path)] == ["two"]


def test_a_model_file_renamed_by_hand_is_the_model_of_its_new_name(trained, tmp_path):
    model, gallery_path = trained
    copies = tmp_path / "copies.db"
    folder = models.models_dir(copies)
    folder.mkdir()
    good = models.model_path("two", gallery_path).read_bytes()
    (folder / "renamed.jaxstyle-model").write_bytes(good)  # its record still says "two"
    (folder / "no spaces please.jaxstyle-model").write_bytes(good)
    (folder / "cut.jaxstyle-model").write_bytes(good[: len(good) // 2])
    found, problems = models.scan_models(copies)
    assert [m.name for m in found] == ["renamed"]
    assert models.load_model("renamed", copies).name == "renamed"
    assert sorted(models.list_records(copies)) == ["cut", "renamed"]
    cut, unnameable = problems  # in the files' order
    assert "cut.jaxstyle-model is not a jaxstyle model, or it is damaged" in cut
    assert "no spaces please.jaxstyle-model is left out: a model name is" in unnameable
    assert unnameable.endswith("rename the file")
    photo = images.open_image(CONTENT_DIR / "chicago.jpg")
    assert Painter(models.load_model("renamed", copies)).paint(photo, ["great_wave"], size_px=32).model == "renamed"
    (tmp_path / "out").mkdir()
    assert models.export_model("renamed", tmp_path / "out", copies).name == "renamed.jaxstyle-model"
    with pytest.raises(models.ModelError, match="the models here are cut, renamed"):
        models.load_model("two", copies)
    listed = _cli("models", "list", "--gallery", str(copies), capture_output=True)
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert listed.returncode == 0 and names == ["arbitrary", "styles26", "renamed"]  # the built-ins first
    assert listed.stderr.count("skipped: ") == 2


def _cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "jaxstyle", *args], cwd=REPO, env=env, text=True, **kwargs)


@pytest.mark.slow
def test_a_killed_training_leaves_a_valid_checkpoint_that_resume_continues(
    photo_dir, tmp_path, warm_cache_dir, fallback_weights
):
    """Killed with SIGKILL and resumed, a training ends with the very params, moving average,
    Adam state and loss history of the same training run uninterrupted (docs/how-it-works.md, Model files)."""
    gallery_path = tmp_path / "gallery.db"
    whole_gallery = tmp_path / "whole" / "gallery.db"
    whole_gallery.parent.mkdir()
    env = {**os.environ, "JAXSTYLE_CACHE_DIR": str(warm_cache_dir)}
    steps = 20  # the kill comes at step 2 or soon after, well before the end

    def common_in(where: Path) -> list[str]:
        return [
            "--styles", "udnie", "--photos", str(photo_dir), "--size", "64", "--batch", "1",
            "--name", "killed", "--gallery", str(where), "--checkpoint-every", "1", "--quiet",
        ]  # fmt: skip

    common = common_in(gallery_path)
    # 36 px crops, not the default 32, and a decay: --resume takes both from the checkpoint.
    settings = ["--crop", "36", "--decay", "0.5", "--steps", str(steps)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxstyle", "train", *common, *settings],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    checkpoint = models.checkpoint_path("killed", gallery_path)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.is_file() and models.read_checkpoint_meta("killed", gallery_path)["step"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    step = models.read_checkpoint_meta("killed", gallery_path)["step"]
    assert 2 <= step < steps and models.load_model("killed", gallery_path).meta["step"] >= step - 1
    done = _cli("train", *common, "--steps", str(steps), "--resume", "--json", env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    resumed = models.load_model("killed", gallery_path)
    assert resumed.meta["step"] == steps and resumed.meta["train"]["settings"]["crop_px"] == 36
    assert resumed.meta["train"]["settings"]["decay_fraction"] == 0.5
    # The same training, never interrupted, in a gallery of its own.
    whole = _cli("train", *common_in(whole_gallery), *settings, env=env, capture_output=True)
    assert whole.returncode == 0, whole.stderr
    for path in (models.model_path, models.checkpoint_path):
        after_kill = models.decode(path("killed", gallery_path).read_bytes(), "resumed")
        uninterrupted = models.decode(path("killed", whole_gallery).read_bytes(), "uninterrupted")
        assert after_kill.keys() == uninterrupted.keys()
        for part in ("net", "norms", "average", "opt_state"):
            if part in uninterrupted:
                for a, b in zip(jax.tree.leaves(after_kill[part]), jax.tree.leaves(uninterrupted[part]), strict=True):
                    np.testing.assert_array_equal(a, b, err_msg=f"{path.__name__}: {part}")
        assert after_kill["meta"]["loss_history"] == uninterrupted["meta"]["loss_history"]
    # --from starts a new model from it (its own painting by default); --resume with --from is refused.
    # The killed training's batch and crops: its compiled step comes from the cache.
    started = _cli("train", "--from", "killed", "--name", "next", *common[2:8], "--crop", "36", "--steps", "1",
                   "--quiet", "--gallery", str(gallery_path), "--json", env=env, capture_output=True)  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["started_from"] == {"model": "killed", "step": steps, "train_s": ANY}
    assert models.load_model("next", gallery_path).styles == ("udnie",)
    both = _cli("train", "--from", "killed", "--name", "next", "--resume", "--gallery", str(gallery_path),
                env=env, capture_output=True)  # fmt: skip
    assert both.returncode == 2 and both.stderr.count("\n") == 1 and "leave out --from" in both.stderr
    # Training it afresh under the same name is refused, not overwritten.
    again = _cli("train", *common, "--steps", "2", env=env, capture_output=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists already" in again.stderr


def test_the_cli_generates_with_a_model_and_manages_models(trained, tmp_path, content_path, warm_cache_dir):
    model, gallery_path = trained
    env = {**os.environ, "JAXSTYLE_CACHE_DIR": str(warm_cache_dir)}
    out = tmp_path / "out.png"
    done = _cli(
        "generate", "--model", "two", "--style", "starry_night", "--style", "great_wave", "--style-blend", "0.7,0.3",
        "--content", str(content_path), "--size", "64", "--out", str(out), "--json", "--gallery", str(gallery_path),
        env=env, capture_output=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["method"] == "instant" and summary["style_blend"] == [0.7, 0.3]
    assert summary["run_s"] > 0 and summary["compile_s"] > 0 and out.is_file()
    listed = _cli("models", "list", "--json", "--gallery", str(gallery_path), env=env, capture_output=True)
    assert [m["name"] for m in json.loads(listed.stdout) if not m["builtin"]] == ["two"]
    bad = {
        "unknown style": ["--model", "two", "--style", "the_scream"],
        "unknown model": ["--model", "nope", "--style", "starry_night"],
        "a Ray cluster": ["--model", "two", "--style", "starry_night", "--ray-address", "127.0.0.1:1"],
    }
    for name, args in bad.items():
        done = _cli(
            "generate", *args, "--content", str(content_path), "--out", str(tmp_path / "x.png"),
            "--gallery", str(gallery_path), env=env, capture_output=True,
        )  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr, name
        assert done.stderr.count("\n") == 1, name
    assert "--ray-address is for optimization runs" in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_model_whose_painting_is_not_an_image_is_refused_at_import(trained, tmp_path):
    """Its params are whole, but the painting of one style is a text: refused before it is listed,
    not when that style is first used."""
    model, gallery_path = trained
    style = model.styles[0]
    forged = tmp_path / "forged.jaxstyle-model"
    images = {**model.style_images, style: b"not a painting at all"}
    models.save_model(forged, models.model_document("forged", model.net, model.norms, model.meta, images))
    with pytest.raises(models.ModelError, match=f"forged.jaxstyle-model is damaged: model forged's style {style}"):
        models.import_model(forged, tmp_path / "other.db")
    assert models.list_models(tmp_path / "other.db") == []


def test_a_model_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """Its size is read from the file system; none of its bytes are (the CLI says it in one line, exit 2)."""
    huge = tmp_path / "huge.jaxstyle-model"
    with huge.open("wb") as stream:  # sparse: 300 MB on paper, nothing on disk
        stream.truncate(300 * 2**20)
    read: list[Path] = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real_read_bytes(self))
    with pytest.raises(models.ModelError, match="huge.jaxstyle-model is 300 MB; a model file is at most 256 MB"):
        models.import_model(huge, tmp_path / "gallery.db")
    assert read == [] and models.list_models(tmp_path / "gallery.db") == []
    monkeypatch.undo()
    done = _cli("models", "import", str(huge), "--gallery", str(tmp_path / "gallery.db"), capture_output=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "at most 256 MB" in done.stderr
