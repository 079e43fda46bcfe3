"""VGG19 weights: the pretrained Keras file (download, verify, convert, cache) or a labeled fallback.

The pretrained weights are Keras's ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``, the
original Caffe-trained VGG19 (Simonyan & Zisserman) that Gatys et al. used, with kernels already
HWIO. They are downloaded once into ``paths.cache_dir()/"weights"``, checked against their
published md5 and converted to an ``.npz`` of the params pytree, which later runs read.

:func:`load_weights` looks in this order: an explicit path (``--weights``), ``JAXSTYLE_WEIGHTS``,
the cached ``.npz``, the cached ``.h5``, a download (only when allowed), and last the offline
fallback. The fallback is a VGG19 with smooth random filters (see :func:`smooth_random_params`),
each layer rescaled to a mean activation of 1; it still transfers style recognizably, but
everything made with it is labeled (``Weights.pretrained`` is False, ``Weights.description``
says so). A bad file is always an error, never a silent switch to the fallback.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pooch
import requests
import urllib3

from jaxstyle import paths, vgg
from jaxstyle.errors import WeightsError

log = logging.getLogger(__name__)

KERAS_FILE_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_MD5 = "253f8cb515780f3b799900260a226db6"
# The URLs keras.applications.vgg19 itself uses, newest first.
KERAS_URLS: tuple[str, ...] = (
    f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{KERAS_FILE_NAME}",
    f"https://github.com/fchollet/deep-learning-models/releases/download/v0.1/{KERAS_FILE_NAME}",
)
KERAS_SIZE_BYTES = 80_134_624
KERAS_SIZE_MB = 80

# Bump when the .npz layout changes; older caches are then rebuilt from the cached .h5.
NPZ_FORMAT_VERSION = 1
# Bump when the fallback's recipe changes (init, calibration images), so old caches are not reused.
FALLBACK_VERSION = 2
# requests' timeout: for connecting and for each read, not for the whole 80 MB.
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK_BYTES = 256 * 1024

SOURCE_PRETRAINED = "pretrained"
SOURCE_FALLBACK = "random-fallback"
_KIND_KERAS = "keras-h5"
_KIND_FALLBACK = "random-fallback"

ProgressCallback = Callable[[int, int | None], None]
Params = dict[str, Any]


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


# --- Keras HDF5 ------------------------------------------------------------------------------


def _keras_layer_name(name: str) -> str:
    """``conv3_2`` → ``block3_conv2``."""
    block, index = name.removeprefix("conv").split("_")
    return f"block{block}_conv{index}"


def _text(value: Any) -> str:
    # h5py gives attributes written by Keras as bytes (np.bytes_); newer writers use str.
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def md5_of(path: str | os.PathLike) -> str:
    """The md5 hex digest of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _check_shape(source: str, name: str, what: str, array: np.ndarray) -> np.ndarray:
    expected = vgg.param_shapes()[name][what]
    if tuple(array.shape) != expected:
        raise WeightsError(f"{source}: {name} {what} has shape {tuple(array.shape)}, VGG19 needs {expected}")
    if not np.isfinite(array).all():
        raise WeightsError(f"{source}: {name} {what} holds NaN or infinite values")
    return array


def load_keras_h5(path: str | os.PathLike, *, verify_md5: bool = False) -> Params:
    """Read VGG19's 16 convolutions from a Keras weight file into the vgg params pytree.

    Follows the file's own index rather than guessing dataset names: the root attribute
    ``layer_names`` lists the layers (pooling layers too, with no weights) and each layer group's
    ``weight_names`` lists its kernel then its bias, named ``block1_conv1_W_1:0`` by Keras 1 and
    ``block1_conv1/kernel:0`` by Keras 2. Layers other than ``block*_conv*`` (the classifier of
    the full file) are ignored.

    Args:
        path: the ``.h5`` file.
        verify_md5: also require the md5 of the published notop file (:data:`KERAS_MD5`).

    Returns:
        ``{"params": {"conv1_1": {"kernel": (3, 3, 3, 64), "bias": (64,)}, …}}`` as numpy float32.

    Raises:
        WeightsError: the file is missing, not HDF5, truncated, not a Keras weight file, lacks a
            layer, has a wrong shape, or (with ``verify_md5``) has another md5.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"VGG19 weight file {path} does not exist")
    if verify_md5:
        _require_md5(path, KERAS_MD5)
    if not h5py.is_hdf5(path):
        raise WeightsError(f"{path} is not an HDF5 file, so not a Keras weight file ({KERAS_FILE_NAME})")
    params: dict[str, dict[str, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            root: h5py.Group = f
            # A whole saved model (model.save) keeps its weights one level down.
            if "layer_names" not in root.attrs and "model_weights" in root:
                root = root["model_weights"]
            if "layer_names" not in root.attrs:
                raise WeightsError(
                    f"{path} is HDF5 but not a Keras (2.x) weight file: it has no 'layer_names' attribute"
                )
            layer_names = {_text(n) for n in root.attrs["layer_names"]}
            missing = [_keras_layer_name(n) for n in vgg.LAYER_NAMES if _keras_layer_name(n) not in layer_names]
            if missing:
                raise WeightsError(f"{path} lacks VGG19 layer(s) {', '.join(missing)}: not a VGG19 weight file?")
            for name in vgg.LAYER_NAMES:
                group = root[_keras_layer_name(name)]
                weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
                if len(weight_names) != 2:
                    raise WeightsError(
                        f"{path}: layer {group.name.lstrip('/')} lists {len(weight_names)} weights "
                        f"({weight_names}), a convolution has 2 (kernel, bias)"
                    )
                kernel, bias = (np.asarray(group[w], dtype=np.float32) for w in weight_names)
                params[name] = {
                    "kernel": _check_shape(str(path), name, "kernel", kernel),
                    "bias": _check_shape(str(path), name, "bias", bias),
                }
    except (OSError, KeyError, ValueError, TypeError) as error:
        # h5py reports truncation and damaged blocks as OSError, absent datasets as KeyError.
        raise WeightsError(f"cannot read {path} as a Keras weight file (truncated or damaged?): {error}") from error
    return {"params": params}


def _require_md5(path: Path, expected: str) -> str:
    got = md5_of(path)
    if got != expected:
        raise WeightsError(
            f"{path} has md5 {got}, but {KERAS_FILE_NAME} has md5 {expected}: the file is incomplete or a "
            f"different file. Delete it and run `python -m jaxstyle weights` to download it again."
        )
    return got


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
    return weights_dir() / KERAS_FILE_NAME


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
        urls: where to try, in order; default :data:`KERAS_URLS`.
        md5: the expected md5; default :data:`KERAS_MD5`.
        dest_dir: the folder to put it in; default :func:`weights_dir`.

    Returns:
        The path of the verified file.

    Raises:
        WeightsError: no URL gave a file with the right md5; the message (one line) lists each
            URL's failure.
    """
    urls = KERAS_URLS if urls is None else tuple(urls)
    expected = KERAS_MD5 if md5 is None else md5
    dest_dir = Path(dest_dir) if dest_dir is not None else weights_dir()
    dest = dest_dir / KERAS_FILE_NAME
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
                    url, known_hash=f"md5:{expected}", fname=KERAS_FILE_NAME, path=dest_dir, downloader=downloader
                )
        except (ValueError, OSError, requests.RequestException, urllib3.exceptions.HTTPError) as error:
            # ValueError is pooch's md5 mismatch; the rest are network and disk failures.
            failures.append(f"{url}: {_one_line(error)}")
            log.info("download of %s failed: %s", url, error)
            continue
        return dest
    # One line, as every error message the CLI and the app show.
    raise WeightsError(
        f"could not download the VGG19 weights ({KERAS_FILE_NAME}, md5 {expected}): " + "; ".join(failures)
    )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}"


# --- npz cache -------------------------------------------------------------------------------


def _save_npz(path: Path, params: Params, meta: dict[str, Any]) -> Path:
    """Write params and meta to ``path`` atomically (temp file in the same folder, then os.replace)."""
    arrays = {
        f"{name}/{what}": np.asarray(value, np.float32)
        for name, layer in params["params"].items()
        for what, value in layer.items()
    }
    arrays.update({key: np.asarray(value) for key, value in meta.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as f:
        tmp = Path(f.name)
        try:
            np.savez(f, **arrays)
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
    tmp.chmod(0o644)  # NamedTemporaryFile creates 0600; the cache is an ordinary user file
    os.replace(tmp, path)
    return path


def _read_npz(path: Path, *, meta_only: bool = False) -> tuple[Params | None, dict[str, Any]]:
    """Read a jaxstyle weights ``.npz``: its meta, and (unless ``meta_only``) all 16 layers."""
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
                name: {what: _check_shape(str(path), name, what, data[f"{name}/{what}"]) for what in ("kernel", "bias")}
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
    _convert(Path(h5_path), dest, md5_of(h5_path))
    return dest


def _convert(h5_path: Path, dest: Path, md5: str) -> Params:
    """:func:`convert_to_npz` for a file whose md5 is already known; returns the params too."""
    params = load_keras_h5(h5_path)
    _save_npz(dest, params, {"format_version": NPZ_FORMAT_VERSION, "kind": _KIND_KERAS, "source_md5": md5})
    return params


# --- offline fallback ------------------------------------------------------------------------


def natural_like_images(count: int = 4, size_px: int = 128, seed: int = 0) -> np.ndarray:
    """Deterministic stand-ins for photos, (count, size_px, size_px, 3) RGB in [0, 1].

    Natural images have an amplitude spectrum falling as 1/f and strongly correlated colour
    channels; these are random-phase fields with that spectrum, a shared luminance plus weaker
    colour differences. Generated rather than shipped, so every install calibrates identically.
    """
    rng = np.random.default_rng(seed)
    freq = np.fft.fftfreq(size_px)
    radius = np.hypot(freq[:, None], freq[None, :])
    amplitude = np.divide(1.0, radius, out=np.zeros_like(radius), where=radius > 0)
    images = []
    for _ in range(count):
        fields = []
        for _ in range(3):
            phase = rng.standard_normal((size_px, size_px)) + 1j * rng.standard_normal((size_px, size_px))
            fields.append(np.real(np.fft.ifft2(amplitude * phase)))
        lum, c1, c2 = (field / field.std() for field in fields)
        rgb = np.stack([lum + 0.3 * c1, lum - 0.1 * c1 + 0.1 * c2, lum - 0.3 * c2], axis=-1)
        # Mean and contrast of typical photos (mean ≈ 0.45, std ≈ 0.22 on the [0, 1] scale).
        rgb = (rgb - rgb.mean()) / rgb.std() * 0.22 + 0.45
        images.append(np.clip(rgb, 0.0, 1.0))
    return np.stack(images).astype(np.float32)


def _rescale_to_unit_mean(params: Params, images01: np.ndarray) -> Params:
    """Scale each layer's kernel and bias by one factor so its mean activation on ``images01`` is 1.

    Layers are done in order, each measured on the already rescaled layers before it. A positive
    factor keeps the ReLU's on/off pattern (relu(c·z) = c·relu(z)), so this only evens out the
    scales, as Gatys et al. did for the pretrained VGG. Max pooling, as trained.
    """
    import flax.linen as nn
    import jax.numpy as jnp

    x = vgg.preprocess(jnp.asarray(images01))
    scaled: dict[str, dict[str, np.ndarray]] = {}
    for k, name in enumerate(vgg.LAYER_NAMES):
        if k > 0 and name.endswith("_1"):
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        layer = params["params"][name]
        out = vgg.Conv3x3(vgg.LAYER_CHANNELS[name]).apply({"params": layer}, x)
        mean = float(out.mean())
        if not mean > 0:
            raise WeightsError(f"random VGG19 layer {name} is dead on the calibration images (mean activation 0)")
        factor = 1.0 / mean
        scaled[name] = {what: np.asarray(value, np.float32) * np.float32(factor) for what, value in layer.items()}
        x = out * factor
    return {"params": scaled}


# The fallback's filters are built from three smooth 3×3 shapes: a binomial blob and its two Sobel
# derivatives. Each has a zero at the highest frequency along both axes (a 2 px stripe pattern gives
# no response), as the filters of a trained VGG19 nearly do: trained on photos, it has learned to
# ignore pixel-level noise. Random 3×3 filters (He initialization) instead respond to every
# frequency alike; optimizing an image against them fills it with coloured speckle that neither the
# photo nor the painting has, since noise is the cheapest way to raise their activations.
_BINOMIAL_1D = np.array([1.0, 2.0, 1.0])
_DERIVATIVE_1D = np.array([-1.0, 0.0, 1.0])
SMOOTH_BASIS = np.stack(
    [
        np.outer(_BINOMIAL_1D, _BINOMIAL_1D),  # blob
        np.outer(_BINOMIAL_1D, _DERIVATIVE_1D),  # d/dx (Sobel)
        np.outer(_DERIVATIVE_1D, _BINOMIAL_1D),  # d/dy (Sobel)
    ]
)
SMOOTH_BASIS = SMOOTH_BASIS / np.linalg.norm(SMOOTH_BASIS, axis=(1, 2), keepdims=True)
# Colour directions on the RGB cube: luma (grey), and an orthonormal pair spanning the colour
# differences (whose RGB components sum to 0, so they leave the luma untouched).
_LUMA = np.ones(3) / np.sqrt(3)
_OPPONENT = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.array([[np.sqrt(2)], [np.sqrt(6)]])
# conv1_1's 64 filters by kind, in the proportions a trained VGG19's first layer shows: mostly
# oriented luma edges and colour-opponent blobs, some luma blobs and colour edges.
FIRST_LAYER_FILTERS = {"luma_edge": 28, "luma_blob": 8, "colour_blob": 16, "colour_edge": 12}


def _first_layer(rng: np.random.Generator) -> np.ndarray:
    """conv1_1's kernel (3, 3, 3 BGR, 64): each filter a smooth shape times a colour direction."""
    blob, d_dx, d_dy = SMOOTH_BASIS
    filters = []
    for kind, count in FIRST_LAYER_FILTERS.items():
        for _ in range(count):
            if kind.endswith("edge"):
                angle = rng.uniform(0, 2 * np.pi)
                shape = np.cos(angle) * d_dx + np.sin(angle) * d_dy
            else:
                shape = blob * rng.choice([-1.0, 1.0])
            if kind.startswith("luma"):
                colour = _LUMA
            else:
                hue = rng.uniform(0, 2 * np.pi)
                colour = np.cos(hue) * _OPPONENT[0] + np.sin(hue) * _OPPONENT[1]
            filters.append(shape[:, :, None] * colour[None, None, ::-1])  # the network sees BGR
    return np.stack(filters, axis=-1)


def _smooth_random_kernel(rng: np.random.Generator, in_channels: int, out_channels: int) -> np.ndarray:
    """A (3, 3, in, out) kernel whose every in→out filter is a random mix of SMOOTH_BASIS."""
    coefficients = rng.standard_normal((len(SMOOTH_BASIS), in_channels, out_channels))
    return np.einsum("bhw,bio->hwio", SMOOTH_BASIS, coefficients)


def smooth_random_params(seed: int = 0) -> Params:
    """VGG19 params with smooth random filters (see SMOOTH_BASIS), before calibration: conv1_1
    built from luma and colour-opponent edges and blobs, every later layer random mixes of the three
    smooth shapes, biases 0. Scales are arbitrary (each layer is rescaled afterwards)."""
    rng = np.random.default_rng(seed)
    layers = {}
    for name in vgg.LAYER_NAMES:
        if name == "conv1_1":
            kernel = _first_layer(rng)
        else:
            kernel = _smooth_random_kernel(rng, vgg.LAYER_IN_CHANNELS[name], vgg.LAYER_CHANNELS[name])
        layers[name] = {
            "kernel": kernel.astype(np.float32),
            "bias": np.zeros(vgg.LAYER_CHANNELS[name], np.float32),
        }
    return {"params": layers}


def fallback_npz_path(seed: int = 0) -> Path:
    """Where the fallback params for ``seed`` are cached."""
    return weights_dir() / f"random_fallback_seed{seed}_v{FALLBACK_VERSION}.npz"


def fallback_description(seed: int = 0) -> str:
    """The one line that labels the fallback everywhere (CLI, app, result metadata)."""
    return (
        f"offline fallback: VGG19 with smooth random filters (seed {seed}), layers rescaled to mean activation 1 "
        "— not the pretrained model"
    )


def random_fallback_params(seed: int = 0) -> Params:
    """The offline fallback: :func:`smooth_random_params`, each layer rescaled to mean activation 1.

    Computed once per seed (a few seconds on a CPU) and cached in :func:`fallback_npz_path`.
    Same seed, same params, on every machine.

    Returns:
        The vgg params pytree as numpy float32.
    """
    path = fallback_npz_path(seed)
    if path.is_file():
        try:
            params, meta = _read_npz(path)
            if meta["kind"] == _KIND_FALLBACK and meta["seed"] == seed:
                return params  # type: ignore[return-value]
        except WeightsError as error:
            log.warning("ignoring unreadable fallback cache, recomputing it: %s", error)
    start_s = time.perf_counter()
    params = _rescale_to_unit_mean(smooth_random_params(seed), natural_like_images())
    elapsed_s = time.perf_counter() - start_s
    log.info("computed the random VGG19 fallback (seed %d) in %.1f s", seed, elapsed_s)
    meta = {"format_version": NPZ_FORMAT_VERSION, "kind": _KIND_FALLBACK, "source_md5": "", "seed": seed}
    try:
        _save_npz(path, params, meta)
    except OSError as error:  # a read-only cache only costs recomputing next time
        log.warning("could not cache the fallback weights at %s: %s", path, error)
    return params


# --- choosing the weights --------------------------------------------------------------------


def _to_device(params: Params) -> Params:
    import jax
    import jax.numpy as jnp

    return jax.tree.map(jnp.asarray, params)


def _pretrained_description(md5: str, path: Path, *, converted: bool) -> str:
    kind = "Keras h5, converted" if converted else "Keras h5"
    note = "" if md5 == KERAS_MD5 else f"; not the published file, whose md5 is {KERAS_MD5[:8]}…"
    return f"VGG19 ImageNet weights ({kind}, md5 {md5[:8]}…{note}) from {path}"


def _weights_from_npz(path: Path) -> Weights:
    params, meta = _read_npz(path)
    if meta["kind"] == _KIND_FALLBACK:
        seed = meta["seed"] or 0
        return Weights(
            _to_device(params), False, SOURCE_FALLBACK, f"{fallback_description(seed)} (from {path})", None, path
        )
    md5 = meta["source_md5"]
    return Weights(
        _to_device(params), True, SOURCE_PRETRAINED, _pretrained_description(md5, path, converted=True), md5, path
    )


def _converted_weights(h5: Path, npz: Path) -> Weights:
    """Weights from the cached ``.h5`` (md5 already verified), converting it to ``npz`` on the way."""
    params = _convert(h5, npz, KERAS_MD5)
    description = _pretrained_description(KERAS_MD5, npz, converted=True)
    return Weights(_to_device(params), True, SOURCE_PRETRAINED, description, KERAS_MD5, npz)


def _weights_from_file(path: Path, origin: str) -> Weights:
    """An explicitly named ``.h5`` or ``.npz`` (told apart by content); any problem is an error."""
    if not path.is_file():
        raise WeightsError(f"{origin} points at {path}, which does not exist")
    if h5py.is_hdf5(path):
        params = load_keras_h5(path)
        md5 = md5_of(path)
        desc = _pretrained_description(md5, path, converted=False)
        return Weights(_to_device(params), True, SOURCE_PRETRAINED, desc, md5, path)
    if zipfile.is_zipfile(path):
        return _weights_from_npz(path)
    raise WeightsError(f"{origin} points at {path}, which is neither a Keras .h5 weight file nor a jaxstyle .npz")


def _cached_npz_problem(path: Path) -> str | None:
    """Why the cached npz cannot be used (None if it can), reading only its small meta entries."""
    try:
        _, meta = _read_npz(path, meta_only=True)
    except WeightsError as error:
        return str(error)
    if meta["kind"] != _KIND_KERAS or meta["source_md5"] != KERAS_MD5:
        return f"{path} was not converted from {KERAS_FILE_NAME} (md5 {KERAS_MD5}): a stale or foreign cache"
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
    npz = cached_npz_path()
    if npz.exists():
        problem = _cached_npz_problem(npz)
        if problem is None:
            try:
                return _weights_from_npz(npz)
            except WeightsError as error:  # meta fine but a layer damaged
                problem = str(error)
        problems.append(problem)
    h5 = cached_h5_path()
    if h5.exists():
        got = md5_of(h5)
        if got == KERAS_MD5:
            return _converted_weights(h5, npz)
        problems.append(f"{h5} has md5 {got}, not {KERAS_MD5}: incomplete or damaged")
    download_problem = None
    if allow_download:
        try:
            return _converted_weights(download_weights(progress=progress), npz)
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
        return Weights(_to_device(random_fallback_params(seed)), False, SOURCE_FALLBACK, fallback_description(seed))
    raise WeightsError(
        download_problem
        or f"no pretrained VGG19 weights: run `python -m jaxstyle weights` to download {KERAS_FILE_NAME} "
        "(80 MB), or point --weights / JAXSTYLE_WEIGHTS at a copy"
    )


def weights_status(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """What :func:`load_weights` would use right now, without loading, hashing or downloading.

    Returns:
        ``{"kind", "path", "pretrained", "description", "problem"}``: ``kind`` is "explicit",
        "env", "cached" or "fallback"; ``problem`` is a message when that choice will fail
        (missing file, damaged cache), else None. A cached ``.h5`` is checked when first used.
    """

    def status(kind: str, where: Path | None, pretrained: bool, description: str, problem: str | None = None):
        return {
            "kind": kind,
            "path": str(where) if where else None,
            "pretrained": pretrained,
            "description": description,
            "problem": problem,
        }

    for kind, value, origin in (("explicit", path, "--weights"), ("env", os.environ.get("JAXSTYLE_WEIGHTS"), "")):
        if value:
            where = Path(value)
            origin = origin or "JAXSTYLE_WEIGHTS"
            if not where.is_file():
                return status(
                    kind,
                    where,
                    True,
                    f"weights from {where} ({origin})",
                    f"{origin} points at {where}, which does not exist",
                )
            if zipfile.is_zipfile(where):  # an .npz says what it holds in its small meta entries
                try:
                    _, meta = _read_npz(where, meta_only=True)
                except WeightsError as error:
                    return status(kind, where, True, f"weights from {where} ({origin})", str(error))
                if meta["kind"] == _KIND_FALLBACK:
                    return status(
                        kind, where, False, f"{fallback_description(meta['seed'] or 0)} (from {where}, {origin})"
                    )
            return status(kind, where, True, f"VGG19 ImageNet weights from {where} ({origin})")
    npz, h5 = cached_npz_path(), cached_h5_path()
    npz_problem = _cached_npz_problem(npz) if npz.exists() else None
    if npz.exists() and npz_problem is None:
        return status("cached", npz, True, f"VGG19 ImageNet weights (Keras h5, md5 {KERAS_MD5[:8]}…) cached at {npz}")
    if h5.exists():
        size = h5.stat().st_size  # the md5 is checked on first use; the size is free to check now
        problem = None if size == KERAS_SIZE_BYTES else f"{h5} has {size} bytes, not {KERAS_SIZE_BYTES}: incomplete"
        description = f"VGG19 ImageNet weights, downloaded to {h5} (verified and converted on first use)"
        return status("cached", h5, True, description, problem)
    if npz_problem:
        return status("cached", npz, True, f"cached weights at {npz}", npz_problem)
    return status(
        "fallback",
        None,
        False,
        f"{fallback_description()}; run `python -m jaxstyle weights` to download the pretrained "
        f"{KERAS_FILE_NAME} ({KERAS_SIZE_MB} MB)",
    )
