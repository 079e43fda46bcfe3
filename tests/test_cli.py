"""The command line end to end: real images in, a PNG of the right size out, the run stored;
bad input → one line on stderr and a non-zero exit."""

import json

import pytest
from PIL import Image

from jaxstyle import gallery
from tests.support import REPO, jaxstyle


@pytest.fixture(autouse=True)
def _warm_cache(fallback_weights, warm_cache_dir, monkeypatch):
    """CLI processes share the session's cache: the fallback weights are made once."""
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))


def test_generate_writes_a_png_prints_json_and_stores_the_run(tmp_path, content_path, shared_data):
    out = tmp_path / "result.png"
    db = tmp_path / "runs.db"
    done = jaxstyle(
        "generate",
        "--content", str(content_path),
        "--style", "starry_night",
        "--style", str(shared_data / "styles" / "great_wave.jpg"),
        "--style-blend", "0.7,0.3",
        "--size-px", "48", "--iterations", "4", "--seed", "3",
        "--style-weight", "20", "--optimizer", "adam",
        "--json", "--gallery", str(db), "--title", "cli test", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (48, 36)
    assert summary["width"] == 48 and summary["iterations"] == 4
    assert summary["final_losses"]["total"] < summary["initial_losses"]["total"]
    assert set(summary["final_losses"]) == {"total", "content", "style", "tv"}
    assert summary["weights_source"] == "random-fallback"
    assert "not the pretrained model" in done.stderr  # the fallback is said out loud
    assert summary["settings"]["style_blend"] == [0.7, 0.3]
    with gallery.connect(db) as conn:
        run = gallery.get_run(conn, summary["run_id"])
        assert run.status == "done" and run.title == "cli test"
        assert run.settings["style_weight"] == 20 and len(run.styles) == 2
        assert gallery.run_image(conn, run.id) == out.read_bytes()


def test_a_run_without_a_title_gets_the_same_default_title_as_in_the_app(tmp_path, content_path):
    db = tmp_path / "runs.db"
    done = jaxstyle(
        "generate", "--content", str(content_path), "--style", "starry_night", "--style", "udnie",
        "--out", str(tmp_path / "a.png"), "--size", "32", "--iterations", "2", "--gallery", str(db), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with gallery.connect(db) as conn:
        (run,) = gallery.list_runs(conn)
    assert run.title == "tubingen × The Starry Night + Udnie (Young American Girl, The Dance)"


def test_no_gallery_stores_nothing(tmp_path, content_path):
    db = tmp_path / "runs.db"
    done = jaxstyle(
        "generate", "--content", str(content_path), "--style", "the_scream", "--out", str(tmp_path / "a.png"),
        "--size", "32", "--iterations", "2", "--no-gallery", "--gallery", str(db), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not db.exists()


def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path, content_path):
    cases = {
        "missing photo": ["--content", str(tmp_path / "nope.jpg"), "--style", "starry_night"],
        "unknown style": ["--content", str(content_path), "--style", "starry_nite"],
        "weight out of range": ["--content", str(content_path), "--style", "starry_night", "--style-weight", "-3"],
        "not an image": ["--content", str(REPO / "README.md"), "--style", "starry_night"],
        "blend count": ["--content", str(content_path), "--style", "starry_night", "--style-blend", "0.5,0.5"],
    }
    for name, args in cases.items():
        done = jaxstyle("generate", *args, "--out", str(tmp_path / "x.png"), "--no-gallery", "--size-px", "32")
        assert done.returncode == 2, name
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_weights_with_a_bad_file_is_one_line_on_stderr_and_exit_2(tmp_path):
    """The same convention as every command: status on stdout, the error one line on stderr, exit 2."""
    cases = {
        "missing file": tmp_path / "nowhere.h5",
        "neither h5 nor npz": REPO / "README.md",
    }
    for name, path in cases.items():
        for extra in ([], ["--no-download"]):
            done = jaxstyle("weights", "--weights", str(path), *extra)
            assert done.returncode == 2, (name, extra, done.stdout, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], (name, done.stderr)
            assert done.stdout.startswith("VGG19 weights: ")
            assert "Traceback" not in done.stderr


def test_styles_lists_the_catalog():
    done = jaxstyle("styles")
    assert done.returncode == 0
    assert "starry_night" in done.stdout and "Vincent van Gogh" in done.stdout
