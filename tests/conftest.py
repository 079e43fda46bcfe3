"""Shared fixtures: real images from ../shared/data, temp gallery paths, a small random VGG.

Fixtures only; the helpers tests import are in tests/support.py.

The README's ``python -m pytest`` runs every test; to skip the slow ones locally (trainings,
browsers, benchmarks end to end, Ray; marked ``slow``): ``python -m pytest -m "not slow"``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import SHARED_DATA, STYLES_DIR


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"test images not found at {SHARED_DATA}: the repo must sit beside shared/")
    return SHARED_DATA


@pytest.fixture(scope="session")
def content_path(shared_data: Path) -> Path:
    return shared_data / "content" / "tubingen.jpg"


@pytest.fixture(scope="session")
def style_path(shared_data: Path) -> Path:
    return shared_data / "styles" / "starry_night.jpg"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own cache dir and gallery path, and local catalog images."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("JAXSTYLE_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("JAXSTYLE_GALLERY", str(base / "gallery.db"))
    monkeypatch.setenv("JAXSTYLE_STYLES_DIR", str(STYLES_DIR))
    monkeypatch.delenv("JAXSTYLE_WEIGHTS", raising=False)


@pytest.fixture
def gallery_path(tmp_path: Path) -> Path:
    return tmp_path / "gallery.db"


@pytest.fixture
def app_gallery(monkeypatch, tmp_path) -> Path:
    """The gallery the app opens (``JAXSTYLE_GALLERY``), a fresh file per test."""
    path = tmp_path / "app-gallery.db"
    monkeypatch.setenv("JAXSTYLE_GALLERY", str(path))
    return path


@pytest.fixture(scope="session")
def warm_cache_dir(tmp_path_factory) -> Path:
    """A cache dir shared by the whole session, holding the fallback weights once made (and the
    compile cache of CLI runs), so subprocesses don't each recompute them."""
    return tmp_path_factory.mktemp("warm-cache")


@pytest.fixture(scope="session")
def fallback_weights(warm_cache_dir):
    """The offline fallback VGG19 (what runs here, without the pretrained file), made once."""
    from jaxstyle import weights

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXSTYLE_CACHE_DIR", str(warm_cache_dir))
        patch.delenv("JAXSTYLE_WEIGHTS", raising=False)
        loaded = weights.load_weights()
    assert not loaded.pretrained
    return loaded


@pytest.fixture(scope="session")
def in_process(fallback_weights):
    """The in-process backend with the fallback VGG19: where instant runs paint and score in tests."""
    from jaxstyle.runners import InProcessBackend

    return InProcessBackend(lambda: fallback_weights)


def _small(path: Path, size_px: int):
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((size_px, size_px))
        return image


@pytest.fixture(scope="session")
def small_content(shared_data):
    """The Tübingen photo, 64 px on its long side."""
    return _small(shared_data / "content" / "tubingen.jpg", 64)


@pytest.fixture(scope="session")
def small_style(shared_data):
    """The Starry Night, 64 px on its long side."""
    return _small(shared_data / "styles" / "starry_night.jpg", 64)


@pytest.fixture(scope="session")
def photos(shared_data: Path) -> dict[str, bytes]:
    """Small real JPEGs (re-encoded at 64 px) of every content and style image, by file stem."""
    import io

    from PIL import Image

    out = {}
    for path in sorted((shared_data / "content").glob("*.jpg")) + sorted((shared_data / "styles").glob("*.jpg")):
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((64, 64))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            out[path.stem] = buffer.getvalue()
    return out


@pytest.fixture(scope="session")
def huge_png() -> bytes:
    """A 10,000 x 10,000 px 1-bit PNG: 100 megapixels in a few kB, over the upload guard's limit."""
    import io

    from PIL import Image

    from jaxstyle import images

    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 200_000 and images.MAX_INPUT_PIXELS < 10_000 * 10_000
    return buffer.getvalue()


# --- the end-to-end tests' (what they start is in servers.py)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for a module's browser tests (skipped, or failed, where it is missing)."""
    from tests.servers import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def app_url(tmp_path: Path):
    """`streamlit run dashboard.py` on a free local port, with its own gallery file."""
    from tests.servers import app_health, serve, streamlit_command
    from tests.support import free_port

    port = free_port()
    log_path = tmp_path / "streamlit.log"
    env = {
        **os.environ,
        "JAXSTYLE_GALLERY": str(tmp_path / "gallery.db"),
        "NO_PROXY": "127.0.0.1,localhost",
        "STREAMLIT_SERVER_HEADLESS": "true",
    }
    url = f"http://127.0.0.1:{port}"
    with serve(streamlit_command(port), f"{url}/_stcore/health", log_path, env, ok=app_health):
        yield url


# ----- instant models: one tiny training for the session (test_instant, test_instant_models) -------


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """Two of the shared photos, made small (the training set)."""
    from jaxstyle import images
    from tests.support import CONTENT_DIR

    folder = tmp_path_factory.mktemp("photos")
    for name in ("golden_gate", "chicago"):
        images.fit_long_side(images.open_image(CONTENT_DIR / f"{name}.jpg"), 96).save(folder / f"{name}.jpg")
    return folder


@pytest.fixture(scope="session")
def paintings() -> dict:
    from jaxstyle import images

    return {name: images.open_image(STYLES_DIR / f"{name}.jpg") for name in ("starry_night", "great_wave", "udnie")}


@pytest.fixture(scope="session")
def trained(tmp_path_factory, photo_dir, paintings, fallback_weights):
    """A two-style model trained uninterrupted (tests.instant_support.SMALL), in its own gallery folder."""
    from jaxstyle.instant import train
    from tests.instant_support import SMALL

    gallery_path = tmp_path_factory.mktemp("trained") / "gallery.db"
    styles = [(name, paintings[name]) for name in ("starry_night", "great_wave")]
    model = train.train("two", styles, photo_dir, SMALL, fallback_weights, gallery_path=gallery_path)
    return model, gallery_path
