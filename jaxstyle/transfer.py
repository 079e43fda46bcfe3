"""Neural style transfer (Gatys et al. 2016) with Optax: the whole algorithm, top to bottom.

1. Targets: VGG19 activations of the content image at ``content_layers`` and Gram matrices (or
   Gaussian fits, for the W2 loss) of each style image at ``style_layers``, blended over styles.
   They depend only on the inputs, so they are computed once per scale (objective.py).
2. Loss: ``content_weight·content + style_weight·style + tv_weight·tv`` (objective.py, losses.py).
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
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxstyle import devices, images, objective, vgg
from jaxstyle.errors import Cancelled, SettingsError
from jaxstyle.inits import INITS
from jaxstyle.objective import LossWeights, Objective, Targets, as_batch, named_losses, shape_for, working_shape
from jaxstyle.optimizers import OPTIMIZERS, StepSize
from jaxstyle.preserve_colors import PRESERVE_COLORS
from jaxstyle.pyramid import compose, pyramid
from jaxstyle.runs import LOSS_NAMES
from jaxstyle.settings import TransferSettings
from jaxstyle.weights import Weights


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
    """The settings that change the compiled program (everything else is a traced argument): the
    loss's and the optimization's."""

    objective: Objective
    optimizer: str
    use_ema: bool
    pyramid_levels: int

    @classmethod
    def of(cls, settings: TransferSettings) -> Static:
        return cls(
            objective=Objective.of(settings),
            optimizer=settings.optimizer,
            use_ema=settings.ema_decay > 0,
            pyramid_levels=settings.pyramid_levels,
        )


def enable_compilation_cache(cache_dir: str | None = None) -> None:
    """Turn on JAX's persistent compilation cache, so a second process skips compiling: in
    ``cache_dir``, by default the project's (``<paths.cache_dir()>/xla``, shared by the app, the CLI
    and Ray workers).

    Global: call it from entry points only (the CLI, the app, a worker process), never on import.
    """
    if cache_dir is None:
        from jaxstyle import paths

        cache_dir = str(paths.cache_dir() / "xla")
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    # Everything, even the sub-second forward passes of the targets: a new process should only
    # trace, never compile.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# --- the step -------------------------------------------------------------------------------


def _init_state(static: Static, image: jax.Array) -> TransferState:
    levels = pyramid(image, static.pyramid_levels)
    opt_state = OPTIMIZERS[static.optimizer].make(StepSize(*(jnp.float32(0),) * 3)).init(levels)
    return TransferState(levels=levels, opt_state=opt_state, ema=jnp.zeros_like(image), step=jnp.int32(0))


@functools.partial(jax.jit, static_argnums=0)
def _start_scale(
    static: Static, params: dict, content: jax.Array, styles: tuple[jax.Array, ...], blend: jax.Array, start: jax.Array
) -> tuple[Targets, TransferState]:
    """Everything a scale needs before its first step, as one compiled call (each separate one
    costs a trace and a cache lookup in every new process): the content and blended style targets,
    which depend only on the inputs and so are computed once per scale, and the initial state,
    from ``start`` resized to the content's shape. Being outputs of one computation, the state's
    buffers are distinct, as the chunk's donation of them requires."""
    targets = objective.targets(static.objective, params, content, styles, blend)
    if start.shape != content.shape:
        start = jax.image.resize(start, content.shape, "bicubic").clip(0.0, 1.0)
    return targets, _init_state(static, start)


def _run_chunk(
    static: Static,
    params: dict,
    targets: Targets,
    state: TransferState,
    loss_weights: LossWeights,
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
        return objective.loss_and_terms(static.objective, params, image, targets, loss_weights)

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
def _finish(static, params, state, targets, loss_weights, ema_decay) -> tuple[jax.Array, jax.Array]:
    """The result image and its loss terms."""
    image = _result_image(static, state, ema_decay)
    return image, objective.loss_and_terms(static.objective, params, image, targets, loss_weights)[1]


# --- the driver -----------------------------------------------------------------------------


def _output_image(image: jax.Array, shape: tuple[int, int]) -> Image.Image:
    """The working-shape result (1, H, W, 3) as an image of the requested ``shape``."""
    result = images.from_array(np.asarray(image)[0])
    height, width = shape
    return result if result.size == (width, height) else result.resize((width, height), Image.Resampling.LANCZOS)


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
    layers = static.objective.layers
    content_in, styles_in = objective.prepare_inputs(content, styles, settings)
    params = objective.vgg_params(weights, layers)
    # The targets (once per scale) and the final losses are single forward passes: they run the
    # direct convolutions, and only the chunk compiles Winograd's (about a second per graph).
    forward_params = vgg.without_winograd(params)
    loss_weights = objective.loss_weights(settings)
    learning_rate = jnp.float32(settings.learning_rate)
    warmup_iterations = jnp.float32(settings.warmup_iterations)
    decay_power = jnp.float32(settings.decay_power)
    ema_decay = jnp.float32(settings.ema_decay)
    # The chunk's traced arguments after the state, in _run_chunk's order.
    traced = (loss_weights, learning_rate, warmup_iterations, decay_power, ema_decay)

    scales = settings.scales()
    steps_per_scale = settings.steps_per_scale()
    total_steps = settings.total_iterations()
    min_side = objective.min_side_px(layers)
    out_shape = shape_for(content_in, settings.size_px)
    if min(out_shape) < min_side:
        raise SettingsError(
            f"at size {settings.size_px} px the photo's short side is {min(out_shape)} px, but the layers "
            f"{', '.join(layers)} need at least {min_side} px: raise the size or crop the photo"
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
        content_batch = as_batch(content_in, working_shape(content_in, size_px, layers))
        style_batches = objective.style_batches(static.objective, styles_in, size_px, settings.style_scale)
        # Later scales start from the previous result, resized inside _start_scale.
        start = INITS[settings.init](content_batch, styles_in[0], settings.seed) if image is None else image
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
                history.append({"step": done, "size_px": size_px, **named_losses(row)})
            scale_done += n
            if callback is not None:
                preview = None
                if done - last_preview >= preview_every or done == total_steps:
                    preview = _output_image(_result_image(static, state, ema_decay), shape_for(content_in, size_px))
                    last_preview = done
                report = Iterate(
                    step=done,
                    total_steps=total_steps,
                    size_px=size_px,
                    losses=named_losses(rows[-1]),
                    elapsed_s=time.perf_counter() - started,
                    its_per_s=n / chunk_s if chunk_s > 0 else 0.0,
                    preview=preview,
                )
                if callback(report):
                    raise Cancelled(f"cancelled at iteration {done} of {total_steps}")
        if size_px != scales[-1]:
            image = _result_image(static, state, ema_decay)

    image, final_terms = _finish(static, forward_params, state, targets, loss_weights, ema_decay)
    final = named_losses(np.asarray(final_terms))
    result = images.to_array(_output_image(image, out_shape))
    result = PRESERVE_COLORS[settings.preserve_color].restore(result, content)
    run_s = time.perf_counter() - started - compile_s
    return TransferResult(
        image=images.from_array(result),
        initial_losses={k: v for k, v in history[0].items() if k in LOSS_NAMES},
        final_losses=final,
        loss_history=history,
        compile_s=compile_s,
        run_s=run_s,
        device=devices.description(),
        weights_source=weights.source,
        weights_description=weights.description,
        settings=settings,
    )
