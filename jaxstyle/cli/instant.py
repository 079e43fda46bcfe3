"""``python -m jaxstyle train|models`` and ``generate --model``: instant styles from a shell.

``train`` trains a model (or adds a style to one) on a folder of photos with a progress bar and
checkpoints; ``models list|show|delete|export|import`` manages a gallery's models; ``generate
--model NAME --style S`` paints with one. Every command takes ``--gallery`` (default:
``JAXSTYLE_GALLERY``, else the project's gallery.db): a gallery's models live beside it. Errors end
in one line on stderr and exit status 2 (:func:`~jaxstyle.cli.common.run_command`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxstyle.cli.common import (
    add_gallery_flag,
    add_weights_flags,
    local_weights,
    progress_bar,
    ray_cluster,
    use_compilation_cache,
)
from jaxstyle.errors import JaxstyleError

_MODELS_GALLERY = "gallery whose models to use"  # what train and models use of --gallery


def register(commands: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``models``."""
    from jaxstyle.instant.train import TrainSettings

    defaults = TrainSettings()
    train = commands.add_parser(
        "train",
        help="train an instant-style model on a folder of photos (or add a style to one)",
        description="Train a feed-forward network that paints a photo in one pass, in one or more styles.",
    )
    train.add_argument("--styles", help="paintings to learn, comma-separated (catalog ids, paths or URLs)")
    train.add_argument("--name", help="the new model's name")
    train.add_argument("--add-style", help="a painting to add to --model (only its own parameters train)")
    train.add_argument("--model", help="the model --add-style adds to")
    train.add_argument(
        "--from",
        dest="start_from",
        metavar="MODEL",
        help="start the new model from this model's params (same styles; default --styles: its own paintings)",
    )
    train.add_argument("--photos", type=Path, help="folder of training photos (default: the gallery's photos)")
    train.add_argument(
        "--size",
        type=int,
        default=defaults.size_px,
        help=f"the scale the paintings are learned at: their long side, px (default {defaults.size_px})",
    )
    train.add_argument("--crop", type=int, help="side of the training crops, px (default: half of --size)")
    train.add_argument("--steps", type=int, default=defaults.steps, help=f"steps in all (default {defaults.steps})")
    train.add_argument("--batch", type=int, default=defaults.batch, help=f"crops per step (default {defaults.batch})")
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="Adam's step size")
    train.add_argument(
        "--decay",
        type=float,
        help="the last fraction of the steps over which Adam's step falls linearly to 0 (default 0: constant)",
    )
    train.add_argument(
        "--ema",
        type=float,
        help="the model is the moving average of the params over the steps, at this decay per step "
        f"(default {defaults.ema_decay}; 0: the last step's params)",
    )
    train.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, help="steps per checkpoint")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--resume", action="store_true", help="continue a stopped training from its last checkpoint")
    add_weights_flags(train)
    train.add_argument("--json", action="store_true", help="print one JSON summary line on stdout")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--ray-address",
        help="train on a worker of this Ray cluster (auto, HOST:PORT or ray://HOST:10001); checkpoints come back here",
    )
    add_gallery_flag(train, what=_MODELS_GALLERY)
    train.set_defaults(func=_train)

    models = commands.add_parser("models", help="list, show, delete, export or import instant-style models")
    add_gallery_flag(models, what=_MODELS_GALLERY)
    sub = models.add_subparsers(dest="models_command", required=True)
    listing = sub.add_parser("list", help="every model of the gallery")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_models_list)
    show = sub.add_parser("show", help="one model's styles, training and loss curve")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_models_show)
    delete = sub.add_parser("delete", help="delete a model and its checkpoint")
    delete.add_argument("name")
    delete.set_defaults(func=_models_delete)
    export = sub.add_parser("export", help="copy a model's file out")
    export.add_argument("name")
    export.add_argument("dest", type=Path, help="a file or a folder")
    export.set_defaults(func=_models_export)
    imported = sub.add_parser("import", help="add a model file to the gallery's models")
    imported.add_argument("file", type=Path)
    imported.add_argument("--name", help="import under this name")
    imported.set_defaults(func=_models_import)
    for parser in sub.choices.values():  # after the subcommand too; SUPPRESS keeps one given before it
        add_gallery_flag(parser, what=_MODELS_GALLERY, default=argparse.SUPPRESS)


def _builtin_summary(entry) -> dict:
    """What ``models list`` and ``show`` say of a built-in model."""
    from jaxstyle.instant.builtin import CREDIT

    return {
        "name": entry.name,
        "builtin": True,
        "title": entry.title,
        "summary": entry.summary,
        "styles": "any painting" if entry.any_painting else list(entry.style_names),
        "credit": CREDIT,
    }


def _model_summary(model) -> dict:
    meta = model.meta
    train = meta.get("train", {})
    history = meta.get("loss_history", [])
    return {
        "name": model.name,
        "builtin": False,
        "styles": list(model.styles),
        "step": meta.get("step"),
        "steps": meta.get("steps"),
        "train_s": round(float(meta.get("train_s", 0.0)), 1),
        "final_loss": history[-1] if history else None,
        "settings": train.get("settings"),
        "photos": train.get("photos"),
        "photo_count": train.get("photo_count"),
        "weights_source": train.get("weights_source"),
        "added": meta.get("added", []),
        "started_from": {k: v for k, v in train.get("started_from", {}).items() if k != "train"} or None,
    }


def _train(args: argparse.Namespace) -> int:
    from jaxstyle import inputs, runners
    from jaxstyle.instant import models, train

    start_from = None  # the model a new one starts from (--from)
    specs = [s.strip() for s in (args.styles or "").split(",") if s.strip()]
    if args.add_style:
        if not args.model or args.styles or args.start_from:
            raise JaxstyleError("--add-style needs --model (the model to add to), and no --styles or --from")
        base = models.load_model(args.model, args.gallery)
        name, specs = base.name, [args.add_style]
    elif args.start_from:
        if not args.name:
            raise JaxstyleError("--from needs --name: the new model's name")
        if args.resume:
            raise JaxstyleError("--resume continues from the checkpoint: leave out --from")
        base, name = None, models.check_name(args.name)
        start_from = models.load_model(args.start_from, args.gallery)
    else:
        if not args.styles or not args.name:
            raise JaxstyleError("train needs --styles and --name (or --add-style with --model)")
        base, name = None, models.check_name(args.name)
    resumed = None  # the checkpoint's record
    if args.resume and models.checkpoint_path(name, args.gallery).is_file():
        resumed = models.read_checkpoint_meta(name, args.gallery)
    # A resume crops, schedules and averages as its checkpoint did, unless told otherwise.
    recorded = train.recorded_settings(resumed["train"]["settings"]) if resumed is not None else {}
    crop_px = args.crop if args.crop is not None else recorded.get("crop_px")
    decay = args.decay if args.decay is not None else recorded.get("decay_fraction", 0.0)
    ema_decay = args.ema if args.ema is not None else recorded.get("ema_decay", train.TrainSettings.ema_decay)
    settings = train.TrainSettings(
        size_px=args.size,
        crop_px=crop_px,
        steps=args.steps,
        batch=args.batch,
        learning_rate=args.learning_rate,
        decay_fraction=decay,
        ema_decay=ema_decay,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    train.check_start(name, args.gallery, resume=args.resume, adding=base is not None)
    backend = ray_cluster(args)  # before anything slow
    if start_from is not None and not specs:
        styles = start_from.paintings()
    else:
        styles = [(_style_name(spec), inputs.load_source(spec).image) for spec in specs]
    photo_source = args.photos if args.photos is not None else train.gallery_photos(args.gallery)
    if backend is None:
        use_compilation_cache()  # a resumed or repeated training skips compiling its step, as generate does
        loaded = local_weights(args)
        backend = runners.InProcessBackend(lambda: loaded)
    start_step = int(resumed.get("step", 0)) if resumed is not None else 0
    bar = progress_bar(settings.steps, unit="step", quiet=args.quiet, initial=start_step)

    def on_progress(progress: train.TrainProgress) -> None:
        bar.update(progress.step - bar.n)
        bar.set_postfix(loss=f"{progress.loss:.4g}", img_s=f"{progress.images_per_s:.2f}", refresh=False)

    try:
        model = backend.train(
            name, styles, photo_source, settings, on_progress, gallery_path=args.gallery, resume=args.resume,
            add_to=base, start_from=start_from,
        )  # fmt: skip
    finally:
        bar.close()
        backend.close()
    summary = {**_model_summary(model), "path": str(models.model_path(model.name, args.gallery))}
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"trained {model.name} ({', '.join(model.styles)}): {summary['step']} steps in {summary['train_s']:.0f} s;"
            f" written to {summary['path']}",
            file=sys.stderr,
        )
    return 0


def _style_name(spec: str) -> str:
    """A style's name in a model: its catalog id, else the file or URL's stem."""
    from jaxstyle import catalog

    if catalog.is_known_id(spec):
        return spec
    return Path(spec.rstrip("/").rsplit("/", 1)[-1].split("?")[0]).stem or "style"


def _refuse_builtin(name: str, verb: str) -> None:
    from jaxstyle.instant import builtin

    if builtin.is_builtin(name):
        raise JaxstyleError(f"{name} is a built-in model: every install has it, so it can't be {verb}")


def _models_list(args: argparse.Namespace) -> int:
    from jaxstyle.instant import builtin, models

    found, problems = models.scan_models(args.gallery)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([_builtin_summary(m) for m in builtin.BUILTIN_MODELS.values()]
                         + [_model_summary(m) for m in found]))  # fmt: skip
    else:
        for entry in builtin.BUILTIN_MODELS.values():
            print(f"{entry.name:24} built-in: {entry.summary}")
    if not args.json and not found:
        print(f"no trained models in {models.models_dir(args.gallery)}", file=sys.stderr)
    for model in [] if args.json else found:
        summary = _model_summary(model)
        print(f"{model.name:24} {', '.join(model.styles):40} {summary['step']} steps, {summary['train_s']:.0f} s")
    return 0


def _models_show(args: argparse.Namespace) -> int:
    from jaxstyle.instant import builtin, models

    if builtin.is_builtin(args.name):
        summary = _builtin_summary(builtin.BUILTIN_MODELS[args.name])
        print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
        return 0
    model = models.load_model(args.name, args.gallery)
    summary = {**_model_summary(model), "loss_history": model.meta.get("loss_history", [])}
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            if key != "loss_history":
                print(f"{key}: {value}")
        history = summary["loss_history"]
        if history:
            print(f"loss: {history[0]:.4g} at step 1 → {history[-1]:.4g} at step {len(history)}")
    return 0


def _models_delete(args: argparse.Namespace) -> int:
    from jaxstyle.instant import models

    _refuse_builtin(args.name, "deleted")
    models.delete_model(args.name, args.gallery)
    print(f"deleted model {args.name}", file=sys.stderr)
    return 0


def _models_export(args: argparse.Namespace) -> int:
    from jaxstyle.instant import models

    _refuse_builtin(args.name, "exported")
    dest = models.export_model(args.name, args.dest, args.gallery)
    print(f"wrote {dest}", file=sys.stderr)
    return 0


def _models_import(args: argparse.Namespace) -> int:
    from jaxstyle.instant import models

    model = models.import_model(args.file, args.gallery, name=args.name)
    print(f"imported model {model.name} ({', '.join(model.styles)})", file=sys.stderr)
    return 0


def generate_with_model(args: argparse.Namespace) -> int:
    """``generate --model NAME``: paint with a built-in model (``arbitrary``: ``--style`` takes
    paintings; ``styles26``: style numbers) or a trained one (``--style`` names the model's styles)."""
    from jaxstyle import inputs, runners, weights
    from jaxstyle.instant import builtin, models
    from jaxstyle.instant.paint import Painter
    from jaxstyle.instant.run import run_instant

    if args.ray_address:
        raise JaxstyleError("--ray-address is for optimization runs; an instant model paints here, in a second")
    if builtin.is_builtin(args.model):
        return _generate_builtin(args)
    if args.strength is not None or args.stroke_px is not None:
        raise JaxstyleError(
            f"--strength and --stroke-px are for the built-in models ({', '.join(builtin.BUILTIN_MODELS)}), "
            f"not a trained model"
        )
    model = models.load_model(args.model, args.gallery)
    size_px = args.size_px if args.size_px is not None else 512
    model.style_weights(args.style, args.style_blend)  # a style it lacks, a bad blend: refused before any work
    content = inputs.load_source(args.content)
    loaded = weights.load_weights(args.weights, allow_download=args.download_weights)
    run = run_instant(
        Painter(model),
        content,
        args.style,
        args.style_blend,
        size_px,
        runners.InProcessBackend(lambda: loaded),
        gallery_path=args.gallery,
        store=not args.no_gallery,
        title=args.title,
    )
    _write_and_report(
        args, run, model.name, list(run.result.styles), loaded.source,
        model_weights_source=model.meta.get("train", {}).get("weights_source"),
    )  # fmt: skip
    return 0


def _generate_builtin(args: argparse.Namespace) -> int:
    """``generate --model arbitrary|styles26``: every check before any work, then one pass."""
    from jaxstyle import inputs, runners, weights
    from jaxstyle.instant import builtin
    from jaxstyle.instant.run import run_builtin
    from jaxstyle.settings import blend_weights

    entry = builtin.BUILTIN_MODELS[args.model]
    size_px = args.size_px if args.size_px is not None else 512
    strength = args.strength if args.strength is not None else 1.0
    stroke_px = args.stroke_px or 0
    preserve_color = args.preserve_color or "none"
    builtin.check_sizes(size_px, stroke_px)
    builtin.check_strength(strength)
    blend_weights(args.style_blend, len(args.style))
    painter = entry.painter()
    painter.load()  # a missing or altered weight file: one line, before the inputs are loaded
    if entry.any_painting:
        styles = [inputs.load_source(spec) for spec in args.style]
    else:
        styles = [spec.strip() for spec in args.style]
        painter.style_weights(styles, args.style_blend)
        painter.check_full_strength(strength)
    content = inputs.load_source(args.content)
    loaded = weights.load_weights(args.weights, allow_download=args.download_weights)
    run = run_builtin(
        painter, content, styles, args.style_blend, runners.InProcessBackend(lambda: loaded), size_px=size_px,
        strength=strength, stroke_px=stroke_px, preserve_color=preserve_color, gallery_path=args.gallery,
        store=not args.no_gallery, title=args.title,
    )  # fmt: skip
    styles_named = [s.origin for s in styles] if entry.any_painting else list(run.result.styles)
    _write_and_report(
        args, run, entry.name, styles_named, loaded.source, strength=run.result.strength, stroke_px=stroke_px,
        work_px=run.result.work_px, preserve_color=preserve_color,
    )  # fmt: skip
    return 0


def _write_and_report(
    args: argparse.Namespace, run, model: str, styles: list[str], weights_source: str, **extra
) -> None:
    """Write an instant run's image to ``--out`` and say what was made: one JSON line on stdout with
    ``--json`` (``extra`` is what the kind of model adds), else one line on stderr."""
    from jaxstyle import files, images

    files.atomic_write(args.out, images.png_bytes(run.result.image))
    result = run.result
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(args.out),
                    "run_id": run.run_id,
                    "method": "instant",
                    "model": model,
                    "styles": styles,
                    "style_blend": list(result.blend),
                    **extra,
                    "width": result.image.width,
                    "height": result.image.height,
                    "initial_losses": run.photo_losses,
                    "final_losses": run.losses,
                    "compile_s": round(result.compile_s, 3),
                    "run_s": round(result.run_s, 4),
                    "style_s": round(result.style_s, 4),
                    "device": result.device,
                    "weights_source": weights_source,
                }
            )
        )
    else:
        style = f", +{result.style_s:.3f} s style" if result.style_s else ""
        print(
            f"wrote {args.out} ({result.image.width}×{result.image.height}) in {result.run_s:.3f} s "
            f"(+{result.compile_s:.1f} s compile{style}) with model {model} on {result.device}"
            + (f"; gallery run {run.run_id}" if run.run_id is not None else ""),
            file=sys.stderr,
        )
