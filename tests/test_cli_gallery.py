"""`python -m jaxstyle gallery ...`: list, show, export, import, delete; errors are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

from jaxstyle import cli, gallery
from tests.support import REPO, add_done_run, subprocess_env


def _cli(*argv: str) -> int:
    return cli.main(list(argv))


def test_cli_lists_shows_exports_imports_and_deletes(gallery_path, photos, tmp_path, capsys):
    with gallery.connect(gallery_path) as db:
        first = add_done_run(db, photos, title="first one", tags=["t"])
        second = add_done_run(db, photos, content="chicago", styles=("udnie",))
    g = str(gallery_path)

    assert _cli("gallery", "--gallery", g, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].split()[0] == str(second) and "first one" in lines[2]
    assert _cli("gallery", "--gallery", g, "list", "--json", "--style", "udnie") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["total"] == 1 and [r["id"] for r in listed["runs"]] == [second]

    assert _cli("gallery", "--gallery", g, "show", str(first)) == 0
    shown = capsys.readouterr().out
    assert f"run {first}: first one" in shown and "style_weight: 10.0" in shown
    assert _cli("gallery", "--gallery", g, "show", str(first), "--json") == 0
    assert json.loads(capsys.readouterr().out)["settings"]["size_px"] == 64

    assert _cli("gallery", "--gallery", g, "export", "--run", str(first), str(tmp_path / "one")) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [f"run-{first}.json", f"run-{first}.png"]
    assert _cli("gallery", "--gallery", g, "export", str(tmp_path / "all.zip")) == 0
    assert "exported 2 runs" in capsys.readouterr().out
    assert _cli("gallery", "--gallery", str(tmp_path / "copy.db"), "import", str(tmp_path / "all.zip")) == 0
    assert capsys.readouterr().out.startswith("imported 2 runs")

    assert _cli("gallery", "--gallery", g, "delete", str(first)) == 0
    with gallery.connect(gallery_path) as db:
        assert [r.id for r in gallery.list_runs(db)] == [second]


def test_cli_errors_are_one_line_and_exit_2(gallery_path, tmp_path, capsys):
    assert _cli("gallery", "--gallery", str(gallery_path), "show", "42") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 42" in err
    (tmp_path / "text.db").write_text("not a database")
    assert _cli("gallery", "--gallery", str(tmp_path / "text.db"), "list") == 2
    assert "not a jaxstyle gallery" in capsys.readouterr().err
    assert _cli("gallery", "--gallery", str(tmp_path), "list") == 2
    assert "is a folder" in capsys.readouterr().err
    assert _cli("gallery", "--gallery", str(gallery_path), "list", "--order", "best") == 2
    assert "unknown order 'best'" in capsys.readouterr().err


def test_python_dash_m_jaxstyle_gallery_uses_the_environments_gallery(photos):
    with gallery.connect() as db:  # JAXSTYLE_GALLERY, set per test by conftest
        run_id = add_done_run(db, photos, title="from the env")
    result = subprocess.run(
        [sys.executable, "-m", "jaxstyle", "gallery", "list", "--json"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in json.loads(result.stdout)["runs"]] == [run_id]


def test_a_refused_import_into_a_new_gallery_leaves_no_gallery_file(tmp_path, capsys):
    (tmp_path / "notes.zip").write_text("not a zip")
    target = tmp_path / "new.db"
    code = _cli("gallery", "--gallery", str(target), "import", str(tmp_path / "notes.zip"))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a zip" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.zip"]
