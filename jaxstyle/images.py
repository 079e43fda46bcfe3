"""Images from strangers: decode and validate, resize, encode, and the colour helpers.

Everything a user hands us (an upload, a file, a URL, a catalog id: loaded by :mod:`jaxstyle.inputs`)
goes through :func:`open_image`, which returns a plain RGB image or raises
:class:`~jaxstyle.errors.ImageError` with a message that names the file. The colour helpers at the
end are pure numpy functions of float arrays ``(H, W, 3)`` in ``[0, 1]``.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import unicodedata
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from jaxstyle.errors import ImageError

# The one size cap on what we take from a user: files read, uploads, and downloads (URLs, catalog
# paintings: it is jaxstyle.fetch's default). Some Wikimedia originals are large; 50 MB leaves room.
MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_INPUT_PIXELS = 80_000_000  # decompression-bomb guard: refuse images claiming more pixels
# The longest side, in pixels, of any image we work with: inputs are downscaled to it (not refused),
# and a run's output (settings.RANGES) and its style images are at most this size.
MAX_SIZE_PX = 2048
# The image files we accept, by name, everywhere a name decides (the app's uploaders, a training's
# photo folder): formats Pillow decodes that open_image turns into RGB (a GIF's first frame).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_FORMAT_NAMES = "PNG, JPEG, WebP, BMP, GIF, TIFF"  # IMAGE_SUFFIXES, as people name the formats

_WHITE = (255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_HIGH_DEPTH_MODES = _SIXTEEN_BIT_MODES + ("I", "F")


def _label(name: str | os.PathLike | None) -> str:
    return str(name) if name else "the image"


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def _describe_non_image(data: bytes) -> str:
    """A hint at what the bytes are instead, for the usual mistakes (a web page, an API answer)."""
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "it looks like a web page (HTML), not an image"
    if head.startswith((b"{", b"[")):
        return "it looks like JSON, not an image"
    if head.startswith(b"<"):
        return "it looks like XML or HTML, not an image"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"it is not in an image format we can read ({_FORMAT_NAMES})"
    return "it looks like text, not an image"


def read_file(path: Path, label: str) -> bytes:
    """The bytes of an image file, refused with a one-line message naming ``label`` when the file is
    missing, a folder, unreadable or over :data:`MAX_INPUT_BYTES` (checked before reading)."""
    try:
        size_bytes = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"{label}: file not found") from None
    except OSError as exc:
        raise ImageError(f"{label}: cannot read the file ({exc.strerror or exc})") from None
    if path.is_dir():
        raise ImageError(f"{label}: is a folder, not an image file")
    if size_bytes > MAX_INPUT_BYTES:
        raise ImageError(f"{label}: the file is {_megabytes(size_bytes)}; the limit is {_megabytes(MAX_INPUT_BYTES)}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{label}: cannot read the file ({exc.strerror or exc})") from None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any decoded PIL mode to 8-bit RGB; transparency is composited on white."""
    if image.mode in _HIGH_DEPTH_MODES:
        # PIL's own I;16 -> L conversion clips at 255 instead of scaling, which turns most
        # 16-bit images white; scale to 0..255 ourselves.
        image = Image.fromarray(_high_depth_to_uint8(image))  # mode L
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer or float gray to 8 bits, by the range the values actually use.

    16-bit modes are scaled by 255/65535. "I" and "F" carry no range, so guess from the values:
    floats up to 1 are [0, 1] images, values up to 255 are 8-bit, up to 65535 16-bit.
    """
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    peak = float(values.max(initial=0.0))
    if image.mode in _SIXTEEN_BIT_MODES:
        scale = 255.0 / 65535.0
    elif image.mode == "F" and peak <= 1.0:
        scale = 255.0
    elif peak <= 255.0:
        scale = 1.0
    elif peak <= 65535.0:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0 / peak
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose does).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes whose pixels can be box-averaged; palette indices and PIL's 16-bit modes cannot.
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F")


def _upright_transpose(image: Image.Image) -> Image.Transpose | None:
    """The transpose its EXIF orientation asks for, read before any resize drops the EXIF."""
    try:
        return _UPRIGHT.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # a malformed EXIF block should not cost the user the image
        return None


def _shrink_decoded(image: Image.Image) -> Image.Image:
    """Cut a decoded image far above the working size down by an integer factor, in its own mode.

    Done before EXIF rotation and colour conversion so that those copy a small image: converting
    an 80-megapixel RGBA PNG (a few hundred KB on disk) at full size peaks above 1.5 GB; shrinking
    first keeps the peak near the decoded image itself. The result stays at least the working size,
    so the final Lanczos resize still sets the exact size.
    """
    width, height = image.size
    if image.mode in _REDUCIBLE_MODES:
        factor = max(width, height) // MAX_SIZE_PX
        if factor < 2:
            return image
        # A box filter (anti-aliased), a strip at a time: PIL's reduce copies RGBA/LA images whole
        # to premultiply their alpha, which would double the peak.
        reduced = Image.new(image.mode, (-(-width // factor), -(-height // factor)))
        strip_px = 64 * factor
        for top in range(0, height, strip_px):
            strip = image.crop((0, top, width, min(height, top + strip_px)))
            reduced.paste(strip.reduce(factor), (0, top // factor))
        return reduced
    # Nearest neighbour keeps palette indices valid; keep twice the working size for the final filter.
    factor = max(width, height) // (2 * MAX_SIZE_PX)
    if factor < 2:
        return image
    return image.resize((max(1, width // factor), max(1, height // factor)), Image.Resampling.NEAREST)


def _working_size(width: int, height: int) -> tuple[int, int]:
    scale = MAX_SIZE_PX / max(width, height)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def open_image(data: bytes | str | os.PathLike, *, name: str = "") -> Image.Image:
    """Decode an image from bytes or a file into RGB, refusing anything unsafe or broken.

    Applies the EXIF orientation, keeps the first frame of an animation, converts every mode
    (CMYK, 16-bit, palette, grayscale, with or without alpha) to 8-bit RGB with transparency
    composited on white, and downscales images whose long side exceeds ``MAX_SIZE_PX``.

    Args:
        data: the encoded image bytes, or a path to an image file.
        name: how to call the image in error messages (defaults to the path, if any).

    Returns:
        An RGB PIL image, fully loaded (no open file behind it).

    Raises:
        ImageError: the file is missing, empty, too big, not an image, truncated or corrupt,
            or claims more than ``MAX_INPUT_PIXELS`` pixels.
    """
    if isinstance(data, str | os.PathLike):
        path = Path(data).expanduser()
        label = name or str(path)
        data = read_file(path, label)
    else:
        label = _label(name)
        data = bytes(data)
    if not data:
        raise ImageError(f"{label}: the file is empty")
    if len(data) > MAX_INPUT_BYTES:
        raise ImageError(f"{label}: the file is {_megabytes(len(data))}; the limit is {_megabytes(MAX_INPUT_BYTES)}")

    try:
        # Image.open reads only the header. PIL warns (or raises, past twice its own limit) about
        # decompression bombs; silence the warning here because our stricter check follows.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: the image has too many pixels (over {MAX_INPUT_PIXELS:,})") from None
    except Exception:  # PIL plugins raise many kinds of error on bad input
        raise ImageError(f"{label}: cannot be opened as an image: {_describe_non_image(data)}") from None

    width, height = image.size
    if width * height > MAX_INPUT_PIXELS:
        raise ImageError(
            f"{label}: the image is {width}x{height} px ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_INPUT_PIXELS / 1e6:.0f} megapixels"
        )
    if width < 1 or height < 1:
        raise ImageError(f"{label}: the image has no pixels ({width}x{height})")

    try:
        if max(width, height) > MAX_SIZE_PX:
            # JPEG can decode straight at 1/2, 1/4 or 1/8 scale, never below the requested size;
            # a cheap head start for huge photos (other formats ignore this).
            image.draft(None, _working_size(width, height))
        # load() forces the full decode, so a truncated or corrupt file fails here, not later.
        image.load()
        upright = _upright_transpose(image)
        image = _to_rgb(_shrink_decoded(image))
        if upright is not None:
            image = image.transpose(upright)
    except Exception as exc:  # same zoo of decoder errors as above
        raise ImageError(f"{label}: the image is truncated or corrupt ({exc})") from None

    if max(image.size) > MAX_SIZE_PX:
        image = fit_long_side(image, MAX_SIZE_PX)
    return image


_UNSAFE_FILENAME_CHARS = re.compile(r'[<>:"|?*]')


def safe_filename(name: str, *, max_chars: int = 120) -> str:
    """A file name that is safe to write anywhere: no folders, control characters or hidden dots.

    Args:
        name: a name from a stranger (an upload's name, the end of a URL).
        max_chars: the longest result; the extension is kept when shortening.

    Returns:
        The last path component with separators, control and reserved characters removed and
        leading dots and spaces stripped; ``"image"`` if nothing is left.
    """
    name = re.split(r"[/\\]", str(name))[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _UNSAFE_FILENAME_CHARS.sub("_", name)
    name = name.strip().lstrip(". ").rstrip(". ")
    if len(name) > max_chars:
        stem, dot, suffix = name.rpartition(".")
        keep_suffix = bool(dot) and 0 < len(suffix) <= 10
        name = stem[: max_chars - len(suffix) - 1] + "." + suffix if keep_suffix else name[:max_chars]
    return name or "image"


def fit_long_side(image: Image.Image, size_px: int) -> Image.Image:
    """Resize (Lanczos) so the long side is ``size_px``, keeping the aspect ratio.

    Args:
        image: any PIL image.
        size_px: the wanted long side in pixels (at least 1).

    Returns:
        A new image; the short side is rounded and at least 1 px.
    """
    if size_px < 1:
        raise ImageError(f"size_px must be at least 1, got {size_px}")
    width, height = image.size
    scale = size_px / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size == image.size:
        return image.copy()
    return image.resize(new_size, Image.Resampling.LANCZOS)


def to_array(image: Image.Image) -> np.ndarray:
    """PIL image -> float32 array (H, W, 3) in [0, 1]."""
    return np.asarray(image.convert("RGB"), dtype=np.float32) / np.float32(255.0)


def from_array(arr: np.ndarray) -> Image.Image:
    """Float array (H, W, 3) in [0, 1] (clipped) -> 8-bit RGB PIL image (rounded)."""
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ImageError(f"expected an array of shape (H, W, 3), got {arr.shape}")
    return Image.fromarray(np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8), mode="RGB")


def png_bytes(image: Image.Image) -> bytes:
    """Encode as PNG (lossless: for results kept in the gallery)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail_bytes(image: Image.Image, size_px: int = 256) -> bytes:
    """A small JPEG (quality 85, long side at most ``size_px``) for gallery grids.

    A 256 px thumbnail of a photo is typically 10-20 KB, so a page of 50 loads at once.
    """
    thumb = image.convert("RGB")
    if max(thumb.size) > size_px:
        thumb = fit_long_side(thumb, size_px)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes (identifies an input image in the gallery)."""
    return hashlib.sha256(data).hexdigest()


# --- Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer")

# BT.601 full range (as in JPEG/JFIF), with Cb and Cr offset to be centred on 0.5.
_YCBCR_FROM_RGB = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_RGB_FROM_YCBCR = np.linalg.inv(_YCBCR_FROM_RGB)
_CHROMA_OFFSET = np.array([0.0, 0.5, 0.5])


def _check_rgb(arr: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ImageError(f"{what}: expected an array of shape (H, W, 3), got {arr.shape}")
    return arr


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) in [0, 1] -> Y, Cb, Cr in [0, 1] (BT.601 full range, chroma centred on 0.5)."""
    rgb = _check_rgb(rgb, "rgb_to_ycbcr")
    return (rgb.astype(np.float32) @ _YCBCR_FROM_RGB.T.astype(np.float32)) + _CHROMA_OFFSET.astype(np.float32)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped: out-of-gamut values stay visible)."""
    ycbcr = _check_rgb(ycbcr, "ycbcr_to_rgb")
    centred = ycbcr.astype(np.float32) - _CHROMA_OFFSET.astype(np.float32)
    return centred @ _RGB_FROM_YCBCR.T.astype(np.float32)


def transfer_luminance(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Keep the content's colours: the stylized image's luma Y with the content's chroma CbCr.

    This is the "luminance-only transfer" of Gatys et al. (2016), applied as a post-process.

    Args:
        stylized: the style transfer result, (H, W, 3) in [0, 1].
        content: the content image at the same size.

    Returns:
        float32 (H, W, 3) in [0, 1].
    """
    stylized = _check_rgb(stylized, "transfer_luminance (stylized)")
    content = _check_rgb(content, "transfer_luminance (content)")
    if stylized.shape != content.shape:
        raise ImageError(f"transfer_luminance: shapes differ: stylized {stylized.shape}, content {content.shape}")
    ycbcr = rgb_to_ycbcr(content)
    ycbcr[..., 0] = rgb_to_ycbcr(stylized)[..., 0]
    return np.clip(ycbcr_to_rgb(ycbcr), 0.0, 1.0)


def match_color(source: np.ndarray, reference: np.ndarray, *, clip: bool = True, eps: float = 1e-8) -> np.ndarray:
    """Recolour ``source`` so its pixel colour mean and covariance match ``reference``'s.

    The linear colour transfer of Gatys et al. (2016), used on the style image before transfer
    so the result keeps the content's palette: ``x' = A (x - mu_s) + mu_r`` with
    ``A = Sigma_r^(1/2) Sigma_s^(-1/2)`` (symmetric matrix square roots, as in Image Analogies).

    Args:
        source: the image to recolour (usually the style image), (H, W, 3) in [0, 1].
        reference: the image whose colour statistics to take (the content image); any size.
        clip: clip the result to [0, 1] (which can move the statistics slightly).
        eps: the smallest covariance eigenvalue used, so flat images (zero covariance) stay finite.

    Returns:
        float32 array with the source's shape.
    """
    source = _check_rgb(source, "match_color (source)")
    reference = _check_rgb(reference, "match_color (reference)")
    src = source.reshape(-1, 3).astype(np.float64)
    ref = reference.reshape(-1, 3).astype(np.float64)
    mu_s, mu_r = src.mean(axis=0), ref.mean(axis=0)
    cov_s = np.cov(src, rowvar=False, bias=True)
    cov_r = np.cov(ref, rowvar=False, bias=True)
    transform = symmetric_sqrt(cov_r, floor=eps) @ symmetric_sqrt(cov_s, floor=eps, inverse=True)
    out = (src - mu_s) @ transform.T + mu_r
    out = out.reshape(source.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0) if clip else out


def symmetric_sqrt(matrix: np.ndarray, *, inverse: bool = False, floor: float = 0.0) -> np.ndarray:
    """The symmetric square root ``M^(1/2)`` of a symmetric positive semi-definite matrix, or with
    ``inverse`` its inverse ``M^(-1/2)``, in float64 (the numpy one; the loss's jitted one is
    :func:`jaxstyle.losses.sqrtm_psd`).

    The matrix is symmetrized first (a covariance computed in floating point can be off by
    rounding), and its eigenvalues raised to at least ``floor``: rounding can make them slightly
    negative, and an inverse needs them positive.

    Raises:
        ValueError: ``inverse`` with a ``floor`` that is not positive (the root of a singular
            matrix has no inverse).
    """
    if inverse and not floor > 0:
        raise ValueError(f"an inverse square root needs a positive eigenvalue floor, got {floor}")
    matrix = np.asarray(matrix, np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    eigenvalues = np.maximum(eigenvalues, floor)
    power = -0.5 if inverse else 0.5
    return (eigenvectors * eigenvalues**power) @ eigenvectors.T
