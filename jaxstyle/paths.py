"""Where jaxstyle keeps its files: the user cache (weights, catalog images, compiled code) and
the default gallery. Environment variables override each, which the tests use to isolate runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """``JAXSTYLE_CACHE_DIR``, else the platform's user cache dir (e.g. ~/.cache/jaxstyle)."""
    return Path(os.environ.get("JAXSTYLE_CACHE_DIR") or platformdirs.user_cache_dir("jaxstyle"))


def default_gallery_path() -> Path:
    """``JAXSTYLE_GALLERY``, else ``gallery.db`` at the project root."""
    return Path(os.environ.get("JAXSTYLE_GALLERY") or PROJECT_ROOT / "gallery.db")


def styles_dir() -> Path | None:
    """``JAXSTYLE_STYLES_DIR``: a local folder of catalog images named ``<id>.jpg``, if set."""
    value = os.environ.get("JAXSTYLE_STYLES_DIR")
    return Path(value) if value else None
