"""The documents say only what is true of the code: every file they mention exists, every
``module.name`` they mention imports and has that name, every benchmark file they quote is in
``benchmarks/``, every link between them lands, and the README stays short enough to read.

A mention is text in backticks outside fenced code blocks (those hold shell commands and Python
that may name the reader's own files). What counts as a repository file: a path ending in ``.py`` or
``.md``, a ``benchmarks/*.json``, or a folder ending in ``/``; a ``module.name`` is a dotted name whose
leading part names a module of ``jaxstyle/`` or ``ui/`` (a suffix of its dotted path, so
``transfer.stylize``, ``video.files.VideoLimits`` and ``jaxstyle.inputs.load_source`` all count).
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]
ARCHITECTURE = REPO / "docs" / "architecture.md"
README_MAX_LINES = 350
PACKAGES = ("jaxstyle", "ui")

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_BENCHMARK_FILE = re.compile(r"\b(\d{4}-\d{2}-\d{2}-[A-Za-z0-9_.-]+?\.json)\b")
_PATH = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
# A dotted mention ending in one of these is a file name (``gallery.db``, ``manifest.json``), not a name.
_FILE_SUFFIXES = {
    "db", "json", "toml", "txt", "cfg", "ini", "yaml", "yml", "jpg", "jpeg", "png", "gif", "webp", "tiff",
    "mp4", "mov", "mkv", "webm", "m4a", "h5", "npz", "zip", "whl", "py", "md", "html", "sh", "log",
}  # fmt: skip


def prose(path: Path) -> str:
    """The text of a document without its fenced code blocks."""
    return _FENCE.sub("", path.read_text(encoding="utf-8"))


def mentions(path: Path) -> list[str]:
    return _BACKTICKED.findall(prose(path))


def is_file_mention(text: str) -> bool:
    """Whether ``text`` names a repository file or folder (not a user's, a URL or a pattern)."""
    if not _PATH.match(text) or text.startswith(("../", "./")) or ".." in text:
        return False
    if text.endswith("/"):
        return True
    if text.startswith("benchmarks/"):
        return text.endswith(".json")
    return text.endswith((".py", ".md"))


def file_exists(text: str) -> bool:
    """A path from the repository root, or a bare file name (``flicker.py``) found somewhere in it."""
    if (REPO / text.rstrip("/")).exists():
        return True
    return "/" not in text and any(True for top in _tracked_tops() for _ in top.rglob(text))


def _tracked_tops() -> list[Path]:
    """The repository's top-level folders, without the hidden ones (``.git``)."""
    return [path for path in REPO.iterdir() if path.is_dir() and not path.name.startswith(".")]


@cache
def project_modules() -> tuple[str, ...]:
    """Every module's dotted name under the packages: those in the source tree, and those the docs
    mention as files (so that a name in a module still to be written is checked, and fails)."""
    paths = [path.relative_to(REPO) for package in PACKAGES for path in (REPO / package).rglob("*.py")]
    paths += [
        Path(text)
        for doc in DOCS
        for text in mentions(doc)
        if is_file_mention(text) and text.endswith(".py") and text.startswith(tuple(f"{p}/" for p in PACKAGES))
    ]
    names = set()
    for path in paths:
        parts = path.with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return tuple(sorted(names))


def is_name_mention(text: str) -> bool:
    return bool(_DOTTED.match(text)) and text.rsplit(".", 1)[1] not in _FILE_SUFFIXES and bool(candidates(text))


def candidates(text: str) -> list[tuple[str, list[str]]]:
    """(module, attribute path) pairs that ``text`` may mean: its longest leading part that is a
    suffix of a project module's dotted name, with the rest as attributes."""
    parts = text.split(".")
    for split in range(len(parts), 0, -1):
        leading = ".".join(parts[:split])
        found = [module for module in project_modules() if module == leading or module.endswith("." + leading)]
        if found:
            return [(module, parts[split:]) for module in found]
    return []


def resolves(text: str) -> str | None:
    """None when ``text`` names something real; else why not."""
    reasons = []
    for module_name, attributes in candidates(text):
        try:
            value = importlib.import_module(module_name)
        except Exception as error:  # a module that does not import is a broken mention, whatever the reason
            reasons.append(f"{module_name} does not import ({type(error).__name__}: {error})")
            continue
        for attribute in attributes:
            if not hasattr(value, attribute):
                reasons.append(f"{module_name} has no {'.'.join(attributes)}")
                break
            value = getattr(value, attribute)
        else:
            return None
    return "; ".join(reasons)


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_every_file_the_docs_mention_exists():
    missing = [
        f"{_relative(doc)}: `{text}`"
        for doc in DOCS
        for text in mentions(doc)
        if is_file_mention(text) and not file_exists(text)
    ]
    assert missing == []


def test_every_module_name_the_docs_mention_resolves():
    broken = [
        f"{_relative(doc)}: `{text}`: {reason}"
        for doc in DOCS
        for text in sorted(set(mentions(doc)))
        if is_name_mention(text) and (reason := resolves(text))
    ]
    assert broken == []


def test_every_benchmark_file_the_docs_name_is_in_benchmarks():
    missing = sorted(
        {
            f"{_relative(doc)}: {name}"
            for doc in DOCS
            for name in _BENCHMARK_FILE.findall(doc.read_text(encoding="utf-8"))
            if not (REPO / "benchmarks" / name).is_file()
        }
    )
    assert missing == []


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a document's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", prose(path), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_link_between_the_docs_lands():
    broken = []
    for doc in DOCS:
        for target in _LINK.findall(prose(doc)):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (doc.parent / file_part).resolve() if file_part else doc
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
                broken.append(f"{_relative(doc)}: ({target})")
    assert broken == []


def test_the_readme_is_short_enough_to_read():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def test_the_code_map_names_every_module():
    mentioned = set(mentions(ARCHITECTURE))
    modules = [
        _relative(path)
        for root in (*PACKAGES, "app_pages")
        for path in sorted((REPO / root).rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py") or path.parent.name in ("cli", "runners")
    ]
    assert [module for module in [*modules, "dashboard.py"] if module not in mentioned] == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path):
    # A check that passes for anything proves nothing: each one is shown a broken mention once.
    assert is_file_mention("jaxstyle/transfer.py") and file_exists("jaxstyle/transfer.py")
    assert is_file_mention("jaxstyle/no_such_module.py") and not file_exists("jaxstyle/no_such_module.py")
    assert is_file_mention("app_pages/") and not is_file_mention("../shared/data/content")
    assert not is_file_mention("~/.cache/jaxstyle") and not is_file_mention("<gallery>-models/")
    assert "quality-the-evaluation-set" in anchors(REPO / "docs" / "measurements.md")
    assert is_name_mention("transfer.stylize") and resolves("transfer.stylize") is None
    assert is_name_mention("jaxstyle.video.files.VideoLimits") and resolves("jaxstyle.video.files.VideoLimits") is None
    assert resolves("transfer.no_such_function") is not None
    assert (
        not is_name_mention("gallery.db") and not is_name_mention("st.login") and not is_name_mention("os.getloadavg")
    )
    document = tmp_path / "doc.md"
    document.write_text("Keep `jaxstyle/transfer.py`.\n\n```bash\necho `ls missing.py`\n```\n", encoding="utf-8")
    assert mentions(document) == ["jaxstyle/transfer.py"]
