"""Getting the Keras file and keeping the converted params: the download (pooch, with progress as a
callback), the cache folder, and the ``.npz`` that later runs read.

Downloads land in ``paths.cache_dir()/"weights"``, checked against the published md5. The
converted ``.npz`` records its format version, what it holds (:data:`KIND_KERAS` or
:data:`KIND_FALLBACK`) and the md5 of its source, so a stale or foreign cache is recognized
instead of trusted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pooch
import requests
import urllib3

from jaxstyle import files, paths, vgg
from jaxstyle.errors import WeightsError
from jaxstyle.weights import keras
from jaxstyle.weights.keras import Params

log = logging.getLogger(__name__)

# Bump when the .npz layout changes; older caches are then rebuilt from the cached .h5.
NPZ_FORMAT_VERSION = 1
# What a cached .npz holds, in its "kind" entry.
KIND_KERAS = "keras-h5"
KIND_FALLBACK = "random-fallback"
# requests' timeout: for connecting and for each read, not for the whole 80 MB.
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK_BYTES = 256 * 1024

ProgressCallback = Callable[[int, int | None], None]


# --- download --------------------------------------------------------------------------------


class _ProgressBridge:
    """The tqdm-like object pooch's HTTPDownloader drives, forwarding ``(done_bytes, total_bytes)``.

    pooch sets ``total`` (0 when the server sends no length), calls ``update(chunk)`` per chunk and
    ends with ``reset(); update(total); close()``.
    """

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.total = 0
        self.n = 0
        self._finished = False

    def update(self, n: int) -> None:
        if self._finished and not self.total:
            return  # the closing update(0) of a download of unknown length: keep the real count
        self.n += n
        total = self.total or None
        self.callback(min(self.n, total) if total else self.n, total)

    def reset(self) -> None:
        self._finished = True
        self.n = 0

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    # pooch logs every download to stderr at INFO; our callers report progress themselves.
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def weights_dir() -> Path:
    """Where downloaded and converted weights live: ``paths.cache_dir()/"weights"``."""
    return paths.cache_dir() / "weights"


def cached_h5_path() -> Path:
    """Where :func:`download_weights` puts the Keras file by default."""
    return weights_dir() / keras.KERAS_FILE_NAME


def cached_npz_path() -> Path:
    """Where the converted pretrained params are cached."""
    return weights_dir() / "vgg19_imagenet.npz"


def download_weights(
    *,
    progress: ProgressCallback | None = None,
    urls: Sequence[str] | None = None,
    md5: str | None = None,
    dest_dir: str | os.PathLike | None = None,
) -> Path:
    """Download the Keras VGG19 notop file, trying ``urls`` in order, and verify its md5.

    pooch streams each attempt into a temporary file beside the destination and renames it into
    place only once its md5 matches, so an interrupted or corrupt download never leaves a file
    that a later run would trust. A file already there with the right md5 is not downloaded again;
    one with a wrong md5 is replaced.

    Args:
        progress: called as ``progress(done_bytes, total_bytes)`` while downloading; ``total_bytes``
            is None when the server does not say. An exception it raises (e.g. ``Cancelled``)
            stops the download, leaves no file and propagates.
        urls: where to try, in order; default :data:`~jaxstyle.weights.keras.KERAS_URLS`.
        md5: the expected md5; default :data:`~jaxstyle.weights.keras.KERAS_MD5`.
        dest_dir: the folder to put it in; default :func:`weights_dir`.

    Returns:
        The path of the verified file.

    Raises:
        WeightsError: no URL gave a file with the right md5; the message (one line) lists each
            URL's failure.
    """
    urls = keras.KERAS_URLS if urls is None else tuple(urls)
    expected = keras.KERAS_MD5 if md5 is None else md5
    dest_dir = Path(dest_dir) if dest_dir is not None else weights_dir()
    dest = dest_dir / keras.KERAS_FILE_NAME
    failures: list[str] = []
    for url in urls:
        downloader = pooch.HTTPDownloader(
            progressbar=_ProgressBridge(progress) if progress else False,
            chunk_size=_CHUNK_BYTES,
            timeout=DOWNLOAD_TIMEOUT_S,
        )
        try:
            with _quiet_pooch():
                pooch.retrieve(
                    url,
                    known_hash=f"md5:{expected}",
                    fname=keras.KERAS_FILE_NAME,
                    path=dest_dir,
                    downloader=downloader,
                )
        except (ValueError, OSError, requests.RequestException, urllib3.exceptions.HTTPError) as error:
            # ValueError is pooch's md5 mismatch; the rest are network and disk failures.
            failures.append(f"{url}: {_one_line(error)}")
            log.info("download of %s failed: %s", url, error)
            continue
        return dest
    # One line, as every error message the CLI and the app show.
    raise WeightsError(
        f"could not download the VGG19 weights ({keras.KERAS_FILE_NAME}, md5 {expected}): " + "; ".join(failures)
    )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}"


# --- npz cache -------------------------------------------------------------------------------


def save_npz(path: Path, params: Params, meta: dict[str, Any]) -> Path:
    """Write params and meta to ``path`` whole or not at all (:func:`jaxstyle.files.atomic_write`)."""
    arrays = {
        f"{name}/{what}": np.asarray(value, np.float32)
        for name, layer in params["params"].items()
        for what, value in layer.items()
    }
    arrays.update({key: np.asarray(value) for key, value in meta.items()})
    return files.atomic_write(path, lambda file: np.savez(file, **arrays))


def read_npz(path: Path, *, meta_only: bool = False) -> tuple[Params | None, dict[str, Any]]:
    """Read a jaxstyle weights ``.npz``: its meta, and (unless ``meta_only``) all 16 layers.

    Returns:
        ``(params or None, {"kind", "source_md5", "seed"})``; ``seed`` is None but for the fallback.

    Raises:
        WeightsError: not a jaxstyle weights ``.npz``, another format version, a layer missing or
            of the wrong shape, or the file truncated or damaged.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            if "format_version" not in data.files:
                raise WeightsError(f"{path} is not a jaxstyle weights .npz (it has no format_version)")
            version = int(data["format_version"])
            if version != NPZ_FORMAT_VERSION:
                raise WeightsError(
                    f"{path} is a jaxstyle weights .npz of format {version}; this version reads format "
                    f"{NPZ_FORMAT_VERSION}. Rebuild it with `python -m jaxstyle weights`."
                )
            meta = {
                "kind": str(data["kind"]),
                "source_md5": str(data["source_md5"]),
                "seed": int(data["seed"]) if "seed" in data.files else None,
            }
            missing = [n for n in vgg.LAYER_NAMES if f"{n}/kernel" not in data.files or f"{n}/bias" not in data.files]
            if missing:
                raise WeightsError(f"{path} lacks VGG19 layer(s) {', '.join(missing)}")
            if meta_only:
                return None, meta
            params = {
                name: {
                    what: keras.check_shape(str(path), name, what, data[f"{name}/{what}"])
                    for what in ("kernel", "bias")
                }
                for name in vgg.LAYER_NAMES
            }
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise WeightsError(f"cannot read {path} as a jaxstyle weights .npz (truncated or damaged?): {error}") from error
    return {"params": params}, meta


def convert_to_npz(h5_path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Convert a Keras ``.h5`` to the params ``.npz`` (default :func:`cached_npz_path`), atomically.

    The ``.npz`` records a format version and the md5 of its source, so a stale cache (older
    format) or a foreign one (from another file) is recognized instead of trusted.
    """
    dest = Path(dest) if dest is not None else cached_npz_path()
    convert_known_md5(Path(h5_path), dest, keras.md5_of(h5_path))
    return dest


def convert_known_md5(h5_path: Path, dest: Path, md5: str) -> Params:
    """:func:`convert_to_npz` for a file whose md5 is already known; returns the params too."""
    params = keras.load_keras_h5(h5_path)
    save_npz(dest, params, {"format_version": NPZ_FORMAT_VERSION, "kind": KIND_KERAS, "source_md5": md5})
    return params
