"""Neural style transfer (Gatys et al. 2016) with Optax: the whole algorithm, top to bottom.

1. Targets: VGG19 activations of the content image at ``content_layers`` and Gram matrices (or
   Gaussian fits, for the W2 loss) of each style image at ``style_layers``, blended over styles.
   They depend only on the inputs, so they are computed once per scale.
2. Loss: ``content_weight·content + style_weight·style + tv_weight·tv`` (see losses.py).
3. Optimization of the image's pixels (RGB, [0, 1]) with Adam or L-BFGS from Optax, projected
   back into the box after every step; optionally an exponential moving average of the iterates.
4. Coarse to fine: each scale of ``settings.scales()`` starts from the previous result, upsampled.

The step is one jitted function that runs a chunk of iterations inside ``lax.fori_loop`` and
returns every iteration's losses, so reporting progress costs nothing per step. Loss weights and
the learning rate are traced arguments: moving a slider never recompiles. The core reports
through a callback and never prints.

Speed (see ``python -m jaxstyle.bench``): the optimization runs at a *working shape* whose sides
are multiples of 16 px or more (:func:`working_shape`), so photos of nearby aspect ratios share
one compiled step and every pooling halves exactly; the result is resized to the requested size
at the end. Compiled steps are kept per (static settings, shape) for the life of the process,
and across processes by JAX's persistent cache (:func:`enable_compilation_cache`). On CPU the deep
layers' convolutions, forward and backward, run as Winograd F(2×2, 3×3) with kernels transformed
once per run (winograd.py; about a fifth of a step at 256 px).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxstyle import images, losses, vgg
from jaxstyle.errors import Cancelled, SettingsError
from jaxstyle.optimizers import OPTIMIZERS, StepSize
from jaxstyle.pyramid import compose, pyramid
from jaxstyle.runs import LOSS_NAMES
from jaxstyle.settings import TransferSettings
from jaxstyle.style_losses import STYLE_LOSSES
from jaxstyle.weights import Weights

# Style images are never upsampled beyond this long side: beyond it they only cost time.
_MAX_STYLE_PX = images.MAX_SIZE_PX


@dataclasses.dataclass(frozen=True)
class Iterate:
    """A progress report. ``losses`` holds the weighted ``total`` and the unweighted terms."""

    step: int  # 1-based, counted over all scales
    total_steps: int
    size_px: int  # long side of the current scale
    losses: dict[str, float]
    elapsed_s: float  # since the start of the run, compile time included
    its_per_s: float  # over the last chunk, compile time excluded
    preview: Image.Image | None = None


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """What a run produced, with everything needed to store and compare it."""

    image: Image.Image
    initial_losses: dict[str, float]
    final_losses: dict[str, float]
    loss_history: list[dict[str, float]]  # one entry per iteration: step, size_px and LOSS_NAMES
    compile_s: float
    run_s: float
    device: str
    weights_source: str
    weights_description: str
    settings: TransferSettings


class TransferState(NamedTuple):
    """Everything that changes from one step to the next, as a pytree."""

    levels: tuple[jax.Array, ...]  # what is optimized: the image's pyramid levels (see compose)
    opt_state: Any
    ema: jax.Array  # running average of the iterates, not debiased
    step: jax.Array  # iterations done at this scale


@dataclasses.dataclass(frozen=True)
class Static:
    """The settings that change the compiled program (everything else is a traced argument)."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    pooling: str
    style_loss: str
    optimizer: str
    use_ema: bool
    pyramid_levels: int

    @classmethod
    def of(cls, settings: TransferSettings) -> Static:
        return cls(
            content_layers=settings.content_layers,
            style_layers=settings.style_layers,
            pooling=settings.pooling,
            style_loss=settings.style_loss,
            optimizer=settings.optimizer,
            use_ema=settings.ema_decay > 0,
            pyramid_levels=settings.pyramid_levels,
        )

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


def device_description() -> str:
    """The device runs go to, e.g. ``cpu`` or ``gpu:NVIDIA H200``."""
    device = jax.devices()[0]
    return device.platform if device.platform == "cpu" else f"{device.platform}:{device.device_kind}"


def enable_compilation_cache(cache_dir: str) -> None:
    """Turn on JAX's persistent compilation cache, so a second process skips compiling.

    Global: call it from entry points only (the CLI, the app), never on import.
    """
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    # Everything, even the sub-second forward passes of the targets: a new process should only
    # trace, never compile.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# --- targets --------------------------------------------------------------------------------


def style_targets(static: Static, params: dict, styles: Sequence[jax.Array], blend: jax.Array) -> dict[str, Any]:
    """The style loss's targets at every style layer: the styles' statistics blended by ``blend``."""
    return _blend_style_targets(static, [_style_stats(static, params, style) for style in styles], blend)


def _style_stats(static: Static, params: dict, style: jax.Array) -> dict[str, Any]:
    feats = vgg.features(params, style, static.style_layers, static.pooling)
    return {name: STYLE_LOSSES[static.style_loss].statistics(f) for name, f in feats.items()}


def _blend_style_targets(static: Static, per_style: list[dict[str, Any]], blend: jax.Array) -> dict[str, Any]:
    """Blend the styles' statistics with weights ``blend`` (summing to 1), then prepare them as
    the style loss's targets."""
    blended = jax.tree.map(lambda *xs: sum(blend[i] * x for i, x in enumerate(xs)), *per_style)
    return {name: STYLE_LOSSES[static.style_loss].target(stats) for name, stats in blended.items()}


# --- loss and step --------------------------------------------------------------------------


def terms_from_features(
    static: Static, feats: dict, image: jax.Array, targets: dict, layer_weights: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The unweighted loss terms (content, style, tv) of ``image`` whose VGG activations are ``feats``."""
    content = sum(losses.content_loss(feats[n], targets["content"][n]) for n in static.content_layers)
    content = content / len(static.content_layers)
    style_loss = STYLE_LOSSES[static.style_loss].loss
    style_terms = [style_loss(feats[name], targets["style"][name]) for name in static.style_layers]
    style = jnp.dot(jnp.stack(style_terms), layer_weights)
    return content, style, losses.tv_loss(image)


def weighted(terms: tuple[jax.Array, jax.Array, jax.Array], loss_weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The weighted total of (content, style, tv) and all four in LOSS_NAMES order."""
    content, style, tv = terms
    total = loss_weights[0] * content + loss_weights[1] * style + loss_weights[2] * tv
    return total, jnp.stack([total, content, style, tv])


def loss_weight_arrays(settings: TransferSettings) -> tuple[jax.Array, jax.Array]:
    """The style layers' weights (normalized to sum 1) and the (content, style, tv) loss weights,
    as the traced arrays :func:`loss_and_terms` takes."""
    layer_weights = np.asarray(settings.style_layer_weights or (1.0,) * len(settings.style_layers), np.float32)
    loss_weights = np.array([settings.content_weight, settings.style_weight, settings.tv_weight], np.float32)
    return jnp.asarray(layer_weights / layer_weights.sum()), jnp.asarray(loss_weights)


def loss_and_terms(
    static: Static, params: dict, image: jax.Array, targets: dict, layer_weights: jax.Array, loss_weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The weighted total loss of ``image`` and its terms (LOSS_NAMES order): the one loss of
    optimization runs and of training instant models."""
    feats = vgg.features(params, image, static.layers, static.pooling)
    return weighted(terms_from_features(static, feats, image, targets, layer_weights), loss_weights)


def _init_state(static: Static, image: jax.Array) -> TransferState:
    levels = pyramid(image, static.pyramid_levels)
    opt_state = OPTIMIZERS[static.optimizer].make(StepSize(*(jnp.float32(0),) * 3)).init(levels)
    return TransferState(levels=levels, opt_state=opt_state, ema=jnp.zeros_like(image), step=jnp.int32(0))


@functools.partial(jax.jit, static_argnums=0)
def _start_scale(
    static: Static, params: dict, content: jax.Array, styles: tuple[jax.Array, ...], blend: jax.Array, start: jax.Array
) -> tuple[dict, TransferState]:
    """Everything a scale needs before its first step, as one compiled call (each separate one
    costs a trace and a cache lookup in every new process): the content and blended style targets,
    which depend only on the inputs and so are computed once per scale, and the initial state,
    from ``start`` resized to the content's shape. Being outputs of one computation, the state's
    buffers are distinct, as the chunk's donation of them requires."""
    targets = {
        "content": vgg.features(params, content, static.content_layers, static.pooling),
        "style": style_targets(static, params, styles, blend),
    }
    if start.shape != content.shape:
        start = jax.image.resize(start, content.shape, "bicubic").clip(0.0, 1.0)
    return targets, _init_state(static, start)


def _run_chunk(
    static: Static,
    params: dict,
    targets: dict,
    state: TransferState,
    layer_weights: jax.Array,
    loss_weights: jax.Array,
    learning_rate: jax.Array,
    warmup_iterations: jax.Array,
    decay_power: jax.Array,
    ema_decay: jax.Array,
    n_steps: jax.Array,
    max_steps: int,
) -> tuple[TransferState, jax.Array]:
    """``n_steps`` (≤ ``max_steps``) optimizer steps; returns the state and each step's losses.

    Row i of the returned (max_steps, 4) array holds LOSS_NAMES at the image *before* step i.
    """
    optimizer = OPTIMIZERS[static.optimizer]
    transformation = optimizer.make(StepSize(learning_rate, warmup_iterations, decay_power))

    def value_and_terms(levels):
        image = compose(levels)
        if optimizer.clips_in_loss:
            image = image.clip(0.0, 1.0)
        return loss_and_terms(static, params, image, targets, layer_weights, loss_weights)

    def step(i, carry):
        state, history = carry
        levels, opt_state, image, terms = optimizer.step(transformation, value_and_terms, state.levels, state.opt_state)
        ema = ema_decay * state.ema + (1 - ema_decay) * image if static.use_ema else state.ema
        history = history.at[i].set(terms)
        return TransferState(levels, opt_state, ema, state.step + 1), history

    history = jnp.zeros((max_steps, len(LOSS_NAMES)), jnp.float32)
    return jax.lax.fori_loop(0, n_steps, step, (state, history))


# The state is donated: its buffers (the levels, Adam's moments, L-BFGS's memory of 20 of them)
# are updated in place instead of being allocated anew every chunk.
_run_chunk_jit = jax.jit(_run_chunk, static_argnames=("static", "max_steps"), donate_argnames="state")


def _abstract(args: tuple) -> tuple:
    leaves, treedef = jax.tree.flatten(args)
    return treedef, tuple(jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.weak_type) for x in leaves)


@functools.lru_cache(maxsize=32)
def _compiled_chunk(static: Static, max_steps: int, treedef: Any, avals: tuple) -> Any:
    """The compiled chunk for these static settings and argument shapes, compiled once per process
    (and loaded from the persistent cache, when on, in the next one). Compiling ahead of time keeps
    compile time apart from run time in the report."""
    return _run_chunk_jit.lower(static, *jax.tree.unflatten(treedef, avals), max_steps=max_steps).compile()


@functools.partial(jax.jit, static_argnums=0)
def _result_image(static: Static, state: TransferState, ema_decay: jax.Array) -> jax.Array:
    if not static.use_ema:
        return compose(state.levels).clip(0.0, 1.0)  # iterates of an optimizer that clips in its loss may leave the box
    # Bias-corrected EMA: without the correction early averages lean towards the zero start.
    return (state.ema / (1 - ema_decay ** state.step.astype(jnp.float32))).clip(0.0, 1.0)


@functools.partial(jax.jit, static_argnums=0)
def _finish(static, params, state, targets, layer_weights, loss_weights, ema_decay) -> tuple[jax.Array, jax.Array]:
    """The result image and its loss terms."""
    image = _result_image(static, state, ema_decay)
    return image, loss_and_terms(static, params, image, targets, layer_weights, loss_weights)[1]


# One compiled call instead of one per layer, for the same reason as _start_scale.
_with_backward_kernels = jax.jit(vgg.with_backward_kernels, static_argnums=1)


@functools.lru_cache(maxsize=4)
def step_params(weights: Weights, layers: tuple[str, ...]) -> dict:
    """The params the step needs: the layers up to the deepest of ``layers``, with their input-
    gradient kernels and, on CPU, their Winograd forms computed once (see vgg.with_backward_kernels),
    kept per weights object."""
    deepest = max(vgg.LAYER_NAMES.index(name) for name in layers)
    used = {name: weights.params["params"][name] for name in vgg.LAYER_NAMES[: deepest + 1]}
    # Winograd is for XLA:CPU (see winograd.MAX_PIXELS); GPU convolution libraries choose
    # their own algorithms.
    winograd = jax.default_backend() == "cpu"
    return _with_backward_kernels({"params": jax.tree.map(jnp.asarray, used)}, winograd)


# --- inputs ---------------------------------------------------------------------------------


def _shape_for(image: Image.Image, size_px: int, min_side_px: int = 1) -> tuple[int, int]:
    """(height, width) with long side ``size_px`` and the image's aspect ratio; the short side is
    raised to ``min_side_px`` if need be (which then stretches the image a little)."""
    width, height = image.size
    scale = size_px / max(width, height)
    return max(min_side_px, round(height * scale)), max(min_side_px, round(width * scale))


def min_side_px(layers: Sequence[str]) -> int:
    """The smallest image side whose activations at ``layers`` are at least one pixel: each
    pooling before the deepest layer halves the image."""
    deepest = max(vgg.LAYER_NAMES.index(name) for name in layers)
    pools = sum(1 for name in vgg.LAYER_NAMES[1 : deepest + 1] if name.endswith("_1"))
    return 2**pools


def working_shape(image: Image.Image, size_px: int, layers: Sequence[str]) -> tuple[int, int]:
    """(height, width) at which an image of long side ``size_px`` is optimized: the image's shape,
    each side rounded to a multiple of ``min_side_px(layers)`` (so every pooling halves exactly
    and no row or column loses its gradient), or of ``size_px / 16`` rounded down to a power of
    two when that is larger (32 px at 512, 64 px at 1024).

    The coarser grid at large sizes is what lets photos of similar aspect ratios share one
    compiled step: at most about 16 shapes per long side and orientation. It stretches the
    image by at most ~3% before the result is resized back to the exact requested shape.
    """
    multiple = max(min_side_px(layers), 2 ** int(math.log2(max(size_px, 16) / 16)))
    return tuple(max(multiple, round(side / multiple) * multiple) for side in _shape_for(image, size_px))


def _as_batch(image: Image.Image, shape: tuple[int, int]) -> jax.Array:
    height, width = shape
    resized = image.resize((width, height), Image.Resampling.LANCZOS) if image.size != (width, height) else image
    return jnp.asarray(images.to_array(resized)[None])


def _prepare_inputs(
    content: Image.Image, styles: Sequence[Image.Image], settings: TransferSettings
) -> tuple[Image.Image, list[Image.Image]]:
    """Apply colour preservation to the inputs (the output side happens after optimizing)."""
    content = content.convert("RGB")
    styles = [style.convert("RGB") for style in styles]
    if settings.preserve_color == "histogram":
        content_array = images.to_array(content)
        styles = [images.from_array(images.match_color(images.to_array(s), content_array)) for s in styles]
    elif settings.preserve_color == "luminance":
        # Transfer on luminance only (Gatys et al. 2016, "Preserving color"): grey inputs, the
        # style's luminance matched to the content's mean and spread; chroma is restored after.
        content_luma = images.rgb_to_ycbcr(images.to_array(content))[..., 0]
        grey_styles = []
        for style in styles:
            luma = images.rgb_to_ycbcr(images.to_array(style))[..., 0]
            luma = (luma - luma.mean()) / (luma.std() + 1e-6) * content_luma.std() + content_luma.mean()
            grey_styles.append(images.from_array(np.repeat(np.clip(luma, 0, 1)[..., None], 3, axis=-1)))
        content = images.from_array(np.repeat(content_luma[..., None], 3, axis=-1))
        styles = grey_styles
    return content, styles


def _initial_image(settings: TransferSettings, content: jax.Array, style: Image.Image) -> jax.Array:
    if settings.init == "content":
        return content
    if settings.init == "style":
        return _as_batch(style, content.shape[1:3])
    return jax.random.uniform(jax.random.PRNGKey(settings.seed), content.shape, jnp.float32)


def _output_image(image: jax.Array, shape: tuple[int, int]) -> Image.Image:
    """The working-shape result (1, H, W, 3) as an image of the requested ``shape``."""
    result = images.from_array(np.asarray(image)[0])
    height, width = shape
    return result if result.size == (width, height) else result.resize((width, height), Image.Resampling.LANCZOS)


def _to_losses(row: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(LOSS_NAMES, row, strict=True)}


# --- the driver -----------------------------------------------------------------------------


def stylize(
    content: Image.Image,
    styles: Sequence[Image.Image],
    settings: TransferSettings,
    weights: Weights,
    *,
    callback: Callable[[Iterate], bool | None] | None = None,
    report_every: int = 10,
    preview_every: int = 50,
) -> TransferResult:
    """Paint ``content`` in the style of ``styles``.

    Args:
        content: the photo (any PIL image; converted to RGB).
        styles: one or more style images, blended with ``settings.style_blend``.
        settings: every knob of the run.
        weights: VGG19 params and where they came from (see weights.load_weights).
        callback: called every ``report_every`` iterations (and at the end of each scale) with an
            :class:`Iterate`; with a preview image every ``preview_every`` iterations. Returning
            True cancels the run: :class:`~jaxstyle.errors.Cancelled` is raised.
        report_every: iterations run inside one compiled loop between reports.
        preview_every: iterations between preview images.

    Returns:
        The image and its record (losses, history, timings, device, weights source).
    """
    if not styles:
        raise SettingsError("at least one style image is needed")
    if report_every < 1 or preview_every < 1:
        raise SettingsError("report_every and preview_every must be at least 1")
    static = Static.of(settings)
    blend = jnp.asarray(settings.blend_for(len(styles)), jnp.float32)
    content_in, styles_in = _prepare_inputs(content, styles, settings)
    params = step_params(weights, static.layers)
    # The targets (once per scale) and the final losses are single forward passes: they run the
    # direct convolutions, and only the chunk compiles Winograd's (about a second per graph).
    forward_params = vgg.without_winograd(params)
    layer_weights, loss_weights = loss_weight_arrays(settings)
    learning_rate = jnp.float32(settings.learning_rate)
    warmup_iterations = jnp.float32(settings.warmup_iterations)
    decay_power = jnp.float32(settings.decay_power)
    ema_decay = jnp.float32(settings.ema_decay)
    # The chunk's traced arguments after the state, in _run_chunk's order.
    traced = (layer_weights, loss_weights, learning_rate, warmup_iterations, decay_power, ema_decay)

    scales = settings.scales()
    steps_per_scale = settings.steps_per_scale()
    total_steps = settings.total_iterations()
    min_side = min_side_px(static.layers)
    out_shape = _shape_for(content_in, settings.size_px)
    if min(out_shape) < min_side:
        raise SettingsError(
            f"at size {settings.size_px} px the photo's short side is {min(out_shape)} px, but the layers "
            f"{', '.join(static.layers)} need at least {min_side} px: raise the size or crop the photo"
        )
    # The chunk length is a compile-time constant; the steps actually run are a traced argument,
    # so runs of any length share one compiled chunk.
    chunk = report_every

    started = time.perf_counter()
    compile_s = 0.0
    history: list[dict[str, float]] = []
    done = 0
    image = None
    last_preview = 0
    for size_px, n_steps in zip(scales, steps_per_scale, strict=True):
        shape = working_shape(content_in, size_px, static.layers)
        content_batch = _as_batch(content_in, shape)
        style_size = min(_MAX_STYLE_PX, max(16, round(size_px * settings.style_scale)))
        style_batches = tuple(_as_batch(s, working_shape(s, style_size, static.layers)) for s in styles_in)
        # Later scales start from the previous result, resized inside _start_scale.
        start = _initial_image(settings, content_batch, styles_in[0]) if image is None else image
        targets, state = _start_scale(static, forward_params, content_batch, style_batches, blend, start)

        t0 = time.perf_counter()
        args = (params, targets, state, *traced, jnp.int32(chunk))
        compiled = _compiled_chunk(static, chunk, *_abstract(args))
        compile_s += time.perf_counter() - t0

        scale_done = 0
        while scale_done < n_steps:
            n = min(chunk, n_steps - scale_done)
            t0 = time.perf_counter()
            state, rows = compiled(params, targets, state, *traced, jnp.int32(n))
            rows = np.asarray(rows)[:n]  # waits for the chunk to finish
            chunk_s = time.perf_counter() - t0
            for row in rows:
                done += 1
                history.append({"step": done, "size_px": size_px, **_to_losses(row)})
            scale_done += n
            if callback is not None:
                preview = None
                if done - last_preview >= preview_every or done == total_steps:
                    preview = _output_image(_result_image(static, state, ema_decay), _shape_for(content_in, size_px))
                    last_preview = done
                report = Iterate(
                    step=done,
                    total_steps=total_steps,
                    size_px=size_px,
                    losses=_to_losses(rows[-1]),
                    elapsed_s=time.perf_counter() - started,
                    its_per_s=n / chunk_s if chunk_s > 0 else 0.0,
                    preview=preview,
                )
                if callback(report):
                    raise Cancelled(f"cancelled at iteration {done} of {total_steps}")
        if size_px != scales[-1]:
            image = _result_image(static, state, ema_decay)

    image, final_terms = _finish(static, forward_params, state, targets, layer_weights, loss_weights, ema_decay)
    final = _to_losses(np.asarray(final_terms))
    result = images.to_array(_output_image(image, out_shape))
    if settings.preserve_color == "luminance":
        result = images.transfer_luminance(
            result,
            images.to_array(
                content.convert("RGB").resize((result.shape[1], result.shape[0]), Image.Resampling.LANCZOS)
            ),
        )
    run_s = time.perf_counter() - started - compile_s
    return TransferResult(
        image=images.from_array(result),
        initial_losses={k: v for k, v in history[0].items() if k in LOSS_NAMES},
        final_losses=final,
        loss_history=history,
        compile_s=compile_s,
        run_s=run_s,
        device=device_description(),
        weights_source=weights.source,
        weights_description=weights.description,
        settings=settings,
    )


def losses_of(
    image: Image.Image,
    content: Image.Image,
    styles: Sequence[Image.Image],
    settings: TransferSettings,
    weights: Weights,
) -> dict[str, float]:
    """The loss (LOSS_NAMES) of an image made some other way, e.g. by an instant model, as an
    optimization run with ``settings`` at the image's size would score it: same targets, same terms."""
    static = Static.of(settings)
    params = vgg.without_winograd(step_params(weights, static.layers))
    content_in, styles_in = _prepare_inputs(content, styles, settings)
    shape = working_shape(image, max(image.size), static.layers)
    style_size = min(_MAX_STYLE_PX, max(16, round(max(image.size) * settings.style_scale)))
    style_batches = tuple(_as_batch(s, working_shape(s, style_size, static.layers)) for s in styles_in)
    blend = jnp.asarray(settings.blend_for(len(styles)), jnp.float32)
    targets, _ = _start_scale(
        static, params, _as_batch(content_in, shape), style_batches, blend, _as_batch(image, shape)
    )
    layer_weights, loss_weights = loss_weight_arrays(settings)
    _, terms = loss_and_terms(
        static, params, _as_batch(image.convert("RGB"), shape), targets, layer_weights, loss_weights
    )
    return _to_losses(np.asarray(terms))
