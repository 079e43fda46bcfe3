"""Training instant-style models: the optimization's own loss, over a folder of photos.

Every step takes a batch of random crops of the photos (random scale, crop and flip), paints it
with one style (styles take turns), and lowers the very loss that optimization runs minimize
(objective.loss_and_terms: same VGG19 and weights, same layers, same relative weights), with the
painted batch as the image and each photo as its own content target, with Optax's Adam.

Adding a style to a trained model (:func:`train` with ``add_to``) trains only the new style's
rows of the normalization parameters: the gradient of everything else is masked to zero, so every
other style paints exactly as before. A training can also start from a trained model's params
(``start_from``: a new model, the same styles, fresh optimizer state and settings), e.g. to go on
with a model trained elsewhere whose checkpoint did not come along, or to cool its step.

A checkpoint (model and optimizer state) is written every ``checkpoint_every`` steps, whole or not
at all, and the batches are a function of (seed, step) alone: ``resume`` continues a killed run at
its last checkpoint and ends with the same params as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from jaxstyle import images, objective, vgg
from jaxstyle.errors import Cancelled, ImageError
from jaxstyle.instant import models, network
from jaxstyle.settings import TransferSettings
from jaxstyle.weights import Weights

# Photos are kept decoded at this multiple of the crop size on their short side, so a crop can be
# taken at any scale between 1 and this.
_MAX_CROP_SCALE = 1.6
STYLE_IMAGE_PX = 512  # long side of the paintings a model keeps (for the gallery and thumbnails)


def default_crop_px(size_px: int) -> int:
    """Half of ``size_px``, a multiple of 4 (the network's two halvings), at least 32.

    Why half: a crop's Gram matrices are averages over its positions, so a smaller crop at the
    same scale still matches the painting's, at a quarter of the pixels. Measured on the held-out
    photos (README, "Instant styles"): 128 px crops at a 256 px scale trained 4.2× the images per
    second of 256 px crops (2.60 against 0.62 on 2 cores) to about the same loss per step."""
    return max(32, size_px // 8 * 4)


def recorded_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A model's recorded training settings, completed with what records from before a setting
    did: crops of ``size_px`` (before ``crop_px``), a constant step (``decay_fraction``) and the
    last step's params (``ema_decay``)."""
    earlier = {"crop_px": settings.get("size_px"), "decay_fraction": 0.0, "ema_decay": 0.0}
    return {**earlier, **settings}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """One training run's settings (the loss's own settings are TransferSettings' defaults)."""

    # The scale the model learns, 32–1024: the paintings' long side, and the photos' short side
    # (at random between 1 and 1.6 times it).
    size_px: int = 256
    # Side of the square crops of those photos that a step paints, 32–size_px, a multiple of 4;
    # None: default_crop_px(size_px). Training time grows with its square; the scale does not.
    crop_px: int | None = None
    steps: int = 4000  # optimizer steps in all, 1–1000000
    batch: int = 4  # crops per step, 1–64
    learning_rate: float = 1e-3  # Adam's step
    # The last fraction of the steps over which Adam's step falls linearly to 0; 0: constant.
    decay_fraction: float = 0.0
    # >0: the model is the exponential moving average of the params over the steps, at this decay
    # per step (see ema_rate); 0: the last step's params.
    ema_decay: float = 0.999
    checkpoint_every: int = 200  # steps between checkpoints
    seed: int = 0  # crops, flips and initial params

    def __post_init__(self) -> None:
        for name, (low, high) in {
            "size_px": (32, 1024),
            "steps": (1, 1_000_000),
            "batch": (1, 64),
            "checkpoint_every": (1, 1_000_000),
            "seed": (0, 2**31 - 1),
        }.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise models.ModelError(f"{name} must be a whole number between {low} and {high}, got {value!r}")
        if self.crop_px is None:
            object.__setattr__(self, "crop_px", default_crop_px(self.size_px))  # records hold the crop trained
        crop = self.crop_px
        if isinstance(crop, bool) or not isinstance(crop, int) or not 32 <= crop <= self.size_px or crop % 4:
            raise models.ModelError(
                f"crop_px must be a multiple of 4 between 32 and size_px ({self.size_px}), got {crop!r}"
            )
        if not 1e-6 <= self.learning_rate <= 1.0:
            raise models.ModelError(f"learning_rate must be between 1e-06 and 1, got {self.learning_rate!r}")
        decay = self.decay_fraction
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay <= 1.0:
            raise models.ModelError(f"decay_fraction must be a number between 0 and 1, got {decay!r}")
        ema = self.ema_decay
        if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0.0 <= ema < 1.0:
            raise models.ModelError(f"ema_decay must be a number from 0 up to (not including) 1, got {ema!r}")


def ema_rate(ema_decay: float | jax.Array, step: int | jax.Array) -> jax.Array:
    """The decay of the params' moving average at update ``step`` (0 for the first): ``ema_decay``,
    but at most (1 + step) / (10 + step), so the average forgets the random start quickly.

    Why an average: with a constant step the network jitters about its minimum, and where a run
    stops in that jitter moves the held-out loss by several percent; the average of snapshots of
    one run scored better than either snapshot (README, "Instant styles"). Why not the zero-start,
    debiased average the optimization's ``ema_decay`` uses: that one keeps weighting the first,
    random-looking networks of a short training."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))


def learning_rate_schedule(settings: TrainSettings) -> optax.Schedule:
    """Adam's step at each step: ``learning_rate``, then falling linearly to 0 over the last
    ``decay_fraction`` of the steps. A function of the step alone, so a resumed run follows it too.

    Why: with a constant step the network keeps jittering about its minimum (see ema_rate), and
    cooling the step at the end is the usual way to settle it. Measured once so far (README,
    "Instant styles"), so it is off by default; the moving average is on."""
    decay_steps = round(settings.steps * settings.decay_fraction)
    constant = optax.constant_schedule(settings.learning_rate)
    if decay_steps == 0:
        return constant
    cooling = optax.linear_schedule(settings.learning_rate, 0.0, decay_steps)
    return optax.join_schedules([constant, cooling], [settings.steps - decay_steps])


@dataclasses.dataclass(frozen=True)
class TrainProgress:
    """A progress report: where training is, how fast, and the latest loss."""

    step: int
    steps: int
    loss: float
    images_per_s: float
    elapsed_s: float


PhotoSource = str | os.PathLike | Sequence[tuple[str, bytes]]


def gallery_photos(gallery_path: str | os.PathLike | None = None, owner: str | None = None) -> list[tuple[str, bytes]]:
    """The content photos of the gallery's runs (of ``owner``'s runs, on a shared site), (origin,
    bytes): the default training photos."""
    from jaxstyle import gallery

    with gallery.connect(gallery_path) as db:
        photos = gallery.list_inputs(db, "content", owner=owner)
        return [(info.origin, gallery.input_image(db, info.sha256)) for info in photos]


def photo_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a photo folder, by name.

    Raises:
        ModelError: the folder is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise models.ModelError(f"photo folder {folder} does not exist")
    return [p for p in sorted(folder.iterdir()) if p.suffix.lower() in images.IMAGE_SUFFIXES]


def load_photos(source: PhotoSource, size_px: int) -> tuple[list[np.ndarray], list[str]]:
    """Every image of ``source`` (a folder's image files, or (name, bytes) pairs) that decodes, as
    float arrays with a short side of about ``_MAX_CROP_SCALE × size_px``; and a line for each one
    that was skipped and why.

    Raises:
        ModelError: the folder is missing, or no image in it is a usable photo.
    """
    if isinstance(source, (str, os.PathLike)):
        entries, where = [(p.name, p) for p in photo_files(source)], str(Path(source))
    else:
        entries, where = list(source), "the gallery's photos"
    photos, skipped = [], []
    for label, data in entries:
        try:
            photo = images.open_image(data, name=label) if isinstance(data, bytes) else images.open_image(data)
        except ImageError as error:
            skipped.append(str(error))
            continue
        if min(photo.size) < size_px // 2:
            skipped.append(f"{label}: {photo.width}×{photo.height} px is too small for {size_px} px crops")
            continue
        scale = _MAX_CROP_SCALE * size_px / min(photo.size)
        photo = photo.resize((max(size_px, round(photo.width * scale)), max(size_px, round(photo.height * scale))))
        photos.append(images.to_array(photo))
    if not photos:
        why = f" ({'; '.join(skipped[:3])})" if skipped else ""
        raise models.ModelError(
            f"no usable photo in {where}: it needs JPEG or PNG photos of at least {size_px // 2} px{why}"
        )
    return photos, skipped


def describe_photos(source: PhotoSource) -> str:
    """How a model's record names its photos: the folder, or "the gallery's photos"."""
    return str(Path(source).resolve()) if isinstance(source, (str, os.PathLike)) else "the gallery's photos"


def batch_at(photos: Sequence[np.ndarray], step: int, settings: TrainSettings) -> np.ndarray:
    """The batch of ``step``: random photos (decoded by :func:`load_photos` for ``size_px``), each
    shrunk at random to a short side of 1 to 1.6 × ``size_px``, cropped to ``crop_px`` at a random
    position, maybe flipped. A function of (seed, step) alone, so a resumed run sees the batches
    an uninterrupted one would."""
    rng = np.random.default_rng([settings.seed, step])
    size = settings.crop_px
    crops = []
    for _ in range(settings.batch):
        photo = photos[rng.integers(len(photos))]
        height, width, _ = photo.shape
        fraction = rng.uniform(1 / _MAX_CROP_SCALE, 1.0) * settings.crop_px / settings.size_px
        side = max(1, int(min(height, width) * fraction))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        crop = photo[top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = Image.fromarray(np.rint(crop * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
        crops.append(images.to_array(crop))
    return np.stack(crops)


def _loss_settings() -> TransferSettings:
    return TransferSettings()


def _objective() -> objective.Objective:
    return objective.Objective.of(_loss_settings())


def _style_targets(vgg_params: dict, styles: Sequence[Image.Image], size_px: int) -> Any:
    """Each style's targets at every style layer, stacked on a first axis (one per style)."""
    loss = _objective()
    per_style = []
    for style in styles:
        style = style.convert("RGB")
        batch = objective.as_batch(style, objective.working_shape(style, size_px, loss.layers))
        per_style.append(objective.style_targets(loss, vgg_params, [batch], jnp.ones(1)))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *per_style)


def batch_loss(
    trainable: dict, vgg_params: dict, photos: jax.Array, style: Any, style_index: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The mean over the batch of the optimization's loss of each photo painted in the style of
    norm row ``style_index``, against the style targets ``style``; and its terms."""
    loss = _objective()
    loss_weights = objective.loss_weights(_loss_settings())
    n_styles = trainable["norms"]["conv1"]["scale"].shape[0]
    norms = network.blend_norms(trainable["norms"], jax.nn.one_hot(style_index, n_styles))
    painted = network.apply(trainable["net"], photos, norms)
    content = vgg.features(vgg_params, photos, loss.content_layers, loss.pooling)
    feats = vgg.features(vgg_params, painted, loss.layers, loss.pooling)

    def one(image, image_feats, content_feats):
        # One image's loss, as an optimization run computes it (batch axis of 1 restored).
        targets = objective.Targets(content=jax.tree.map(lambda f: f[None], content_feats), style=style)
        image_feats = jax.tree.map(lambda f: f[None], image_feats)
        return objective.loss_and_terms_from_features(loss, image_feats, image[None], targets, loss_weights)

    totals, terms = jax.vmap(one)(painted, feats, content)
    return totals.mean(), terms.mean(axis=0)


def _masks(trainable: dict, only_style: int | None) -> dict:
    """1 where a param is trained, 0 where it is frozen: all of it, or only one style's rows."""
    if only_style is None:
        return jax.tree.map(jnp.ones_like, trainable)
    n_styles = trainable["norms"]["conv1"]["scale"].shape[0]
    row = jax.nn.one_hot(only_style, n_styles)[:, None]
    return {
        "net": jax.tree.map(jnp.zeros_like, trainable["net"]),
        "norms": jax.tree.map(lambda x: row * jnp.ones_like(x), trainable["norms"]),
    }


@functools.partial(jax.jit, donate_argnums=(0, 1, 2))
def _train_step(
    trainable, opt_state, average, masks, vgg_params, photos, style, style_index, learning_rate, ema_decay, step
):
    (loss, terms), grads = jax.value_and_grad(batch_loss, has_aux=True)(
        trainable, vgg_params, photos, style, style_index
    )
    grads = jax.tree.map(jnp.multiply, grads, masks)
    updates, opt_state = optax.adam(learning_rate).update(grads, opt_state, trainable)
    # Adam's update of a param whose gradient was always 0 is 0: frozen params stay bit for bit,
    # and so does their average (it started equal to them and moves by a multiple of the gap).
    trainable = optax.apply_updates(trainable, updates)
    rate = ema_rate(ema_decay, step)
    average = jax.tree.map(lambda mean, now: mean + (1.0 - rate) * (now - mean), average, trainable)
    return trainable, opt_state, average, loss, terms


def check_start(name: str, gallery_path: str | os.PathLike | None, *, resume: bool, adding: bool) -> None:
    """Refuse, before anything slow, a training that would overwrite a model or lose a checkpoint.

    Raises:
        ModelError: a resume with no checkpoint; a new model whose name is taken (a built-in model's
            included); a style added to
            a model whose own training stopped unfinished (resume that first).
    """
    ckpt_path = models.checkpoint_path(name, gallery_path)
    if not adding:
        models.check_new_name(name)
    if resume:
        models.read_checkpoint_meta(name, gallery_path)  # a clear error when there is none
    elif not adding and (ckpt_path.exists() or models.model_path(name, gallery_path).exists()):
        raise models.ModelError(f"a model called {name!r} exists already: delete it, pick another name, or --resume")
    elif adding and ckpt_path.exists():
        # A finished training's checkpoint is replaced by the addition's; an unfinished one is not lost.
        previous = models.read_checkpoint_meta(name, gallery_path)
        if previous["step"] < previous["steps"]:
            raise models.ModelError(
                f"model {name!r} stopped training at step {previous['step']} of {previous['steps']}: "
                "--resume it before adding a style"
            )


def train(
    name: str,
    styles: Sequence[tuple[str, Image.Image]],
    photo_source: PhotoSource,
    settings: TrainSettings,
    weights: Weights,
    *,
    gallery_path: str | os.PathLike | None = None,
    resume: bool = False,
    add_to: models.Model | None = None,
    start_from: models.Model | None = None,
    callback: Callable[[TrainProgress], bool | None] | None = None,
    report_every: int = 10,
    photos_label: str | None = None,
) -> models.Model:
    """Train the model ``name`` to paint in ``styles`` ((name, image) pairs), or add one style to
    ``add_to`` (then ``styles`` holds that one style and only its parameters train). With
    ``start_from`` (a model holding exactly ``styles``, in that order) the new model starts from its
    params instead of random ones; the record names it.

    Writes ``<name>`` and its checkpoint into the gallery's models folder every
    ``settings.checkpoint_every`` steps and at the end. ``callback`` gets a :class:`TrainProgress`
    every ``report_every`` steps; returning True stops training after a checkpoint, raising
    :class:`~jaxstyle.errors.Cancelled`. ``photos_label`` names the photos in the model's record
    (default: the folder, or "the gallery's photos").

    Raises:
        ModelError: bad name, no photos, a resume that does not match its checkpoint, a style the
            model holds already, a ``start_from`` with other styles.
    """
    models.check_name(name)
    if not styles:
        raise models.ModelError("name at least one style to train")
    style_names = [style_name for style_name, _ in styles]
    if len(set(style_names)) != len(style_names):
        raise models.ModelError(f"a style is named twice: {', '.join(style_names)}")
    check_start(name, gallery_path, resume=resume, adding=add_to is not None)
    if start_from is not None:
        if add_to is not None:
            raise models.ModelError("a style is added to a model, or a new model starts from one: not both")
        if list(start_from.styles) != style_names:
            raise models.ModelError(
                f"model {start_from.name} holds {', '.join(start_from.styles)}: a model started from it "
                "trains those styles, in that order"
            )
    ckpt_path = models.checkpoint_path(name, gallery_path)
    model_path = models.model_path(name, gallery_path)
    photos, skipped = load_photos(photo_source, settings.size_px)
    vgg_params = objective.vgg_params(weights, _objective().layers)
    targets = _style_targets(vgg.without_winograd(vgg_params), [image for _, image in styles], settings.size_px)

    record: dict[str, Any] = {
        "settings": dataclasses.asdict(settings),
        "loss_settings": _loss_settings().to_dict(),
        "photos": photos_label or describe_photos(photo_source),
        "photo_count": len(photos),
        "photos_skipped": skipped,
        "weights_source": weights.source,
        "weights_description": weights.description,
    }
    if add_to is not None:
        clash = [s for s in style_names if s in add_to.styles]
        if clash:
            raise models.ModelError(f"model {add_to.name} holds the style(s) {', '.join(clash)} already")
        if len(styles) != 1:
            raise models.ModelError("add one style at a time")
        all_styles = [*add_to.styles, *style_names]
        new_rows = network.init_norms(1)
        trainable = {
            "net": jax.tree.map(jnp.asarray, add_to.net),
            "norms": jax.tree.map(lambda old, new: jnp.concatenate([jnp.asarray(old), new]), add_to.norms, new_rows),
        }
        only_style = len(all_styles) - 1
        history = list(add_to.meta.get("loss_history", []))
        record["added"] = [*add_to.meta.get("added", []), {"style": style_names[0], "steps": settings.steps}]
        base_meta = {k: v for k, v in add_to.meta.items() if k not in ("format", "version", "name")}
        style_pngs = dict(add_to.style_images)
        step0 = 0
    else:
        all_styles = style_names
        if start_from is not None:
            trainable = jax.tree.map(jnp.asarray, {"net": start_from.net, "norms": start_from.norms})
            record["started_from"] = {
                "model": start_from.name,
                "step": start_from.meta.get("step"),
                "train_s": start_from.meta.get("train_s"),
                "train": start_from.meta.get("train", {}),
            }
        else:
            trainable = {"net": network.init_net(settings.seed), "norms": network.init_norms(len(styles))}
        only_style = None
        history, base_meta, step0 = [], {}, 0
        style_pngs = {}
    for style_name, image in styles:
        style_pngs[style_name] = images.png_bytes(images.fit_long_side(image.convert("RGB"), STYLE_IMAGE_PX))
    masks = _masks(trainable, only_style)
    opt_state = optax.adam(settings.learning_rate).init(trainable)
    average = trainable
    elapsed_before = 0.0

    if resume:
        saved = models.decode(ckpt_path.read_bytes(), str(ckpt_path))
        meta = saved["meta"]
        before = {k: v for k, v in recorded_settings(meta["train"]["settings"]).items() if k != "steps"}
        if meta["styles"] != all_styles or before != {k: v for k, v in record["settings"].items() if k != "steps"}:
            raise models.ModelError(
                f"the checkpoint at {ckpt_path} was made with other styles or settings "
                f"({', '.join(meta['styles'])}; {meta['train']['settings']}): resume with those, or train afresh"
            )
        trainable = jax.tree.map(jnp.asarray, {"net": saved["net"], "norms": saved["norms"]})
        average = jax.tree.map(jnp.asarray, saved.get("average", trainable))
        leaves = [jnp.asarray(x) for x in jax.tree.leaves(saved["opt_state"])]
        opt_state = jax.tree.unflatten(jax.tree.structure(opt_state), leaves)
        step0, history, elapsed_before = int(meta["step"]), list(meta["loss_history"]), float(meta["train_s"])
        if "started_from" in meta["train"]:
            record["started_from"] = meta["train"]["started_from"]

    def write(step: int, train_s: float) -> None:
        meta = {
            **base_meta,
            "styles": all_styles,
            "step": step,
            "steps": settings.steps,
            "loss_history": history,
            "train_s": train_s,
            "train": record,
        }
        # The checkpoint holds the trained params and their average; the model, what paints.
        checkpoint = models.model_document(name, trainable["net"], trainable["norms"], meta, style_pngs)
        checkpoint.update(opt_state=jax.tree.leaves(opt_state), average=average)
        models.save_model(ckpt_path, checkpoint)
        painting = average if settings.ema_decay else trainable
        models.save_model(model_path, models.model_document(name, painting["net"], painting["norms"], meta, style_pngs))

    schedule = learning_rate_schedule(settings)
    ema_decay = jnp.float32(settings.ema_decay)
    average = jax.tree.map(jnp.copy, average)  # its own buffers: the step donates both
    started = time.perf_counter()
    window_start, window_steps = started, 0
    step = step0
    while step < settings.steps:
        photos_batch = jnp.asarray(batch_at(photos, step, settings))
        # Styles take turns; added to a model, the one new style is row only_style, target 0.
        target_index = step % len(styles)
        row = only_style if only_style is not None else target_index
        style = jax.tree.map(lambda x: x[target_index], targets)  # noqa: B023 (used at once)
        trainable, opt_state, average, loss, _ = _train_step(
            trainable, opt_state, average, masks, vgg_params, photos_batch, style, jnp.int32(row),
            jnp.float32(schedule(step)), ema_decay, jnp.int32(step),
        )  # fmt: skip
        step += 1
        window_steps += 1
        history.append(float(loss))
        now = time.perf_counter()
        train_s = elapsed_before + now - started
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            write(step, train_s)
        if callback is not None and (step % report_every == 0 or step == settings.steps):
            images_per_s = window_steps * settings.batch / max(now - window_start, 1e-9)
            progress = TrainProgress(step, settings.steps, float(loss), images_per_s, train_s)
            window_start, window_steps = now, 0
            if callback(progress):
                write(step, train_s)
                raise Cancelled(f"training stopped at step {step} of {settings.steps}; --resume continues it")
    if step0 == settings.steps:
        write(step, elapsed_before)
    return models.read_model(model_path)
