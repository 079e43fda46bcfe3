"""Choosing the VGG19 weights: :func:`load_weights` and what it would pick, :func:`weights_status`.

:func:`load_weights` looks in this order: an explicit path (``--weights``), ``JAXSTYLE_WEIGHTS``,
the cached ``.npz``, the cached ``.h5``, a download (only when allowed), and last the offline
fallback (:mod:`jaxstyle.weights.fallback`), which is labeled wherever it is used
(``Weights.pretrained`` is False, ``Weights.description`` says so). A bad file is always an
error, never a silent switch to the fallback.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py

from jaxstyle.errors import WeightsError
from jaxstyle.weights import cache, fallback, keras
from jaxstyle.weights.cache import ProgressCallback
from jaxstyle.weights.keras import Params

log = logging.getLogger(__name__)

SOURCE_PRETRAINED = "pretrained"
SOURCE_FALLBACK = "random-fallback"


@dataclass(frozen=True, eq=False)
class Weights:
    """VGG19 params and where they came from.

    ``eq=False``: comparing params arrays element by element is never what a caller means, and
    identity hashing lets the app cache one instance per process.

    Attributes:
        params: the vgg params pytree ``{"params": {"conv1_1": {"kernel", "bias"}, …}}``, float32.
        pretrained: True for ImageNet weights; False for the random fallback.
        source: a short label, ``"pretrained"`` or ``"random-fallback"``, for result metadata.
        description: one line for people, naming the file and checksum or saying it is the fallback.
        checksum: md5 of the Keras ``.h5`` the params came from; None for the fallback.
        path: the file the params were read from, if any.
    """

    params: Params
    pretrained: bool
    source: str
    description: str
    checksum: str | None = None
    path: Path | None = None


def _to_device(params: Params) -> Params:
    import jax
    import jax.numpy as jnp

    return jax.tree.map(jnp.asarray, params)


def _pretrained_description(md5: str, path: Path, *, converted: bool) -> str:
    kind = "Keras h5, converted" if converted else "Keras h5"
    note = "" if md5 == keras.KERAS_MD5 else f"; not the published file, whose md5 is {keras.KERAS_MD5[:8]}…"
    return f"VGG19 ImageNet weights ({kind}, md5 {md5[:8]}…{note}) from {path}"


def _weights_from_npz(path: Path) -> Weights:
    params, meta = cache.read_npz(path)
    if meta["kind"] == cache.KIND_FALLBACK:
        seed = meta["seed"] or 0
        description = f"{fallback.fallback_description(seed)} (from {path})"
        return Weights(_to_device(params), False, SOURCE_FALLBACK, description, None, path)
    md5 = meta["source_md5"]
    return Weights(
        _to_device(params), True, SOURCE_PRETRAINED, _pretrained_description(md5, path, converted=True), md5, path
    )


def _converted_weights(h5: Path, npz: Path) -> Weights:
    """Weights from the cached ``.h5`` (md5 already verified), converting it to ``npz`` on the way."""
    params = cache.convert_known_md5(h5, npz, keras.KERAS_MD5)
    description = _pretrained_description(keras.KERAS_MD5, npz, converted=True)
    return Weights(_to_device(params), True, SOURCE_PRETRAINED, description, keras.KERAS_MD5, npz)


def _weights_from_file(path: Path, origin: str) -> Weights:
    """An explicitly named ``.h5`` or ``.npz`` (told apart by content); any problem is an error."""
    if not path.is_file():
        raise WeightsError(f"{origin} points at {path}, which does not exist")
    if h5py.is_hdf5(path):
        params = keras.load_keras_h5(path)
        md5 = keras.md5_of(path)
        desc = _pretrained_description(md5, path, converted=False)
        return Weights(_to_device(params), True, SOURCE_PRETRAINED, desc, md5, path)
    if zipfile.is_zipfile(path):
        return _weights_from_npz(path)
    raise WeightsError(f"{origin} points at {path}, which is neither a Keras .h5 weight file nor a jaxstyle .npz")


def _cached_npz_problem(path: Path) -> str | None:
    """Why the cached npz cannot be used (None if it can), reading only its small meta entries."""
    try:
        _, meta = cache.read_npz(path, meta_only=True)
    except WeightsError as error:
        return str(error)
    if meta["kind"] != cache.KIND_KERAS or meta["source_md5"] != keras.KERAS_MD5:
        return (
            f"{path} was not converted from {keras.KERAS_FILE_NAME} (md5 {keras.KERAS_MD5}): a stale or foreign cache"
        )
    return None


def load_weights(
    path: str | os.PathLike | None = None,
    *,
    allow_download: bool = False,
    allow_fallback: bool = True,
    progress: ProgressCallback | None = None,
) -> Weights:
    """The VGG19 weights to use, with where they came from.

    Order: ``path`` (``--weights``; ``.h5`` or ``.npz``) → ``JAXSTYLE_WEIGHTS`` → the cached
    ``.npz`` → the cached ``.h5`` (verified, then converted) → a download (only if
    ``allow_download``) → the offline fallback (only if ``allow_fallback``; labeled).

    A named file that is missing or bad raises, and so does a damaged cache that cannot be
    rebuilt: only a plain absence of pretrained weights leads to the fallback. A named ``.h5`` is
    checked for layout and shapes, not md5 (a copy re-saved by another Keras is fine); its md5 is
    in the description and ``checksum``.

    Args:
        path: an explicit weight file; wins over everything else.
        allow_download: download the Keras file when nothing pretrained is on disk.
        allow_fallback: return the random fallback when no pretrained weights can be had.
        progress: download progress callback ``(done_bytes, total_bytes | None)``.

    Raises:
        WeightsError: see above; the message names the file and what to do.
    """
    if path is not None:
        return _weights_from_file(Path(path), "--weights")
    env = os.environ.get("JAXSTYLE_WEIGHTS")
    if env:
        return _weights_from_file(Path(env), "JAXSTYLE_WEIGHTS")

    problems: list[str] = []
    npz = cache.cached_npz_path()
    if npz.exists():
        problem = _cached_npz_problem(npz)
        if problem is None:
            try:
                return _weights_from_npz(npz)
            except WeightsError as error:  # meta fine but a layer damaged
                problem = str(error)
        problems.append(problem)
    h5 = cache.cached_h5_path()
    if h5.exists():
        got = keras.md5_of(h5)
        if got == keras.KERAS_MD5:
            return _converted_weights(h5, npz)
        problems.append(f"{h5} has md5 {got}, not {keras.KERAS_MD5}: incomplete or damaged")
    download_problem = None
    if allow_download:
        try:
            return _converted_weights(cache.download_weights(progress=progress), npz)
        except WeightsError as error:
            download_problem = str(error)
    if problems:
        # A damaged cache is reported, never papered over with random weights.
        advice = f"; downloading again failed: {download_problem}" if download_problem else ""
        raise WeightsError(
            "the cached VGG19 weights are unusable: "
            + "; ".join(problems)
            + advice
            + ". Run `python -m jaxstyle weights` to download them again, or delete the files to use the fallback."
        )
    if allow_fallback:
        if download_problem:
            log.warning("%s; using the offline fallback", download_problem)
        seed = 0
        params = fallback.random_fallback_params(seed)
        return Weights(_to_device(params), False, SOURCE_FALLBACK, fallback.fallback_description(seed))
    raise WeightsError(
        download_problem
        or f"no pretrained VGG19 weights: run `python -m jaxstyle weights` to download {keras.KERAS_FILE_NAME} "
        f"({keras.KERAS_SIZE_MB} MB), or point --weights / JAXSTYLE_WEIGHTS at a copy"
    )


WeightsKind = Literal["explicit", "env", "cached", "fallback"]


@dataclass(frozen=True)
class WeightsStatus:
    """What :func:`load_weights` would use right now (see :func:`weights_status`).

    Attributes:
        kind: where the weights come from: "explicit" (``--weights``), "env" (``JAXSTYLE_WEIGHTS``),
            "cached" (the user cache) or "fallback" (nothing pretrained on disk).
        path: the file they would be read from; None for the fallback.
        pretrained: True for ImageNet weights; False for the random fallback.
        description: one line for people.
        problem: why that choice will fail (a missing file, a damaged cache), else None.
    """

    kind: WeightsKind
    path: Path | None
    pretrained: bool
    description: str
    problem: str | None = None


def weights_status(path: str | os.PathLike | None = None) -> WeightsStatus:
    """What :func:`load_weights` would use right now, without loading, hashing or downloading.

    A cached ``.h5`` is only checked for its size here; its md5 is checked when first used.
    """
    explicit: tuple[tuple[WeightsKind, str | os.PathLike | None, str], ...] = (
        ("explicit", path, "--weights"),
        ("env", os.environ.get("JAXSTYLE_WEIGHTS"), "JAXSTYLE_WEIGHTS"),
    )
    for kind, value, origin in explicit:
        if value:
            where = Path(value)
            if not where.is_file():
                return WeightsStatus(
                    kind,
                    where,
                    True,
                    f"weights from {where} ({origin})",
                    f"{origin} points at {where}, which does not exist",
                )
            if zipfile.is_zipfile(where):  # an .npz says what it holds in its small meta entries
                try:
                    _, meta = cache.read_npz(where, meta_only=True)
                except WeightsError as error:
                    return WeightsStatus(kind, where, True, f"weights from {where} ({origin})", str(error))
                if meta["kind"] == cache.KIND_FALLBACK:
                    description = f"{fallback.fallback_description(meta['seed'] or 0)} (from {where}, {origin})"
                    return WeightsStatus(kind, where, False, description)
            return WeightsStatus(kind, where, True, f"VGG19 ImageNet weights from {where} ({origin})")
    npz, h5 = cache.cached_npz_path(), cache.cached_h5_path()
    npz_problem = _cached_npz_problem(npz) if npz.exists() else None
    if npz.exists() and npz_problem is None:
        description = f"VGG19 ImageNet weights (Keras h5, md5 {keras.KERAS_MD5[:8]}…) cached at {npz}"
        return WeightsStatus("cached", npz, True, description)
    if h5.exists():
        size = h5.stat().st_size  # the md5 is checked on first use; the size is free to check now
        expected = keras.KERAS_SIZE_BYTES
        problem = None if size == expected else f"{h5} has {size} bytes, not {expected}: incomplete"
        description = f"VGG19 ImageNet weights, downloaded to {h5} (verified and converted on first use)"
        return WeightsStatus("cached", h5, True, description, problem)
    if npz_problem:
        return WeightsStatus("cached", npz, True, f"cached weights at {npz}", npz_problem)
    return WeightsStatus(
        "fallback",
        None,
        False,
        f"{fallback.fallback_description()}; run `python -m jaxstyle weights` to download the pretrained "
        f"{keras.KERAS_FILE_NAME} ({keras.KERAS_SIZE_MB} MB)",
    )
