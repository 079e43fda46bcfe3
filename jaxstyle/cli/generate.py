"""``python -m jaxstyle generate|weights|styles``: paint a photo, get the VGG19 weights, list the catalog.

``generate``'s setting flags are built from :class:`~jaxstyle.settings.TransferSettings`'s fields,
so each default and range is written once, there. Bad input ends in one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path

from jaxstyle import settings as settings_module
from jaxstyle.cli.common import (
    add_gallery_flag,
    add_weights_flags,
    check_out,
    local_weights,
    progress_bar,
    ray_cluster,
    use_compilation_cache,
)
from jaxstyle.errors import JaxstyleError, WeightsError
from jaxstyle.settings import PRESETS, RANGES, TransferSettings

# Fields whose values come from a fixed list.
_CHOICES = {
    "style_loss": settings_module.STYLE_LOSSES,
    "optimizer": settings_module.OPTIMIZERS,
    "init": settings_module.INITS,
    "pooling": ("max", "average"),
    "preserve_color": settings_module.PRESERVE_COLORS,
}


def _comma_list(item_type: type):
    def parse(text: str) -> tuple:
        try:
            return tuple(item_type(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {item_type.__name__}s, got {text!r}") from None

    return parse


def _flag_type(field: dataclasses.Field) -> tuple[type | typing.Callable, str]:
    """argparse type and a metavar for a settings field, from its annotation."""
    hints = typing.get_type_hints(TransferSettings)
    hint = hints[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and args:
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return _comma_list(item), f"{item.__name__.upper()},…"
    return hint, hint.__name__.upper()


# Short spellings users type (the issue and the README use --size).
_ALIASES = {"size": "size_px"}


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (defaults from the preset, else TransferSettings)")
    for field in dataclasses.fields(TransferSettings):
        if field.name == "style_blend":
            continue  # given as --style-blend next to --style
        kind, metavar = _flag_type(field)
        help_text = f"default {field.default!r}"
        if field.name in RANGES:
            low, high = RANGES[field.name]
            help_text += f"; {low:g}–{high:g}"
        flags = ["--" + field.name.replace("_", "-")]
        flags += [f"--{alias}" for alias, name in _ALIASES.items() if name == field.name]
        group.add_argument(
            *flags,
            dest=field.name,
            type=kind,
            choices=_CHOICES.get(field.name),
            metavar=None if field.name in _CHOICES else metavar,
            default=None,
            help=help_text,
        )


def register(commands: argparse._SubParsersAction) -> None:
    """Register ``generate``, ``weights`` and ``styles``."""
    generate = commands.add_parser("generate", help="paint a photo in the style of one or more paintings")
    generate.add_argument("--content", required=True, help="photo: a file path, an http(s) URL or a catalog id")
    generate.add_argument(
        "--style", action="append", required=True, help="painting (path, URL or catalog id); repeat to blend"
    )
    generate.add_argument("--style-blend", type=_comma_list(float), help="weight per --style, e.g. 0.7,0.3")
    generate.add_argument("--out", required=True, type=Path, help="output PNG path")
    generate.add_argument("--preset", choices=sorted(PRESETS), help="start from a preset; flags override it")
    add_weights_flags(generate)
    generate.add_argument("--json", action="store_true", help="print one JSON summary line on stdout")
    add_gallery_flag(generate)
    generate.add_argument("--no-gallery", action="store_true", help="do not store the run in the gallery")
    generate.add_argument("--title", help="title of the run in the gallery (default: photo × paintings)")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.add_argument(
        "--ray-address",
        help="optimize on this Ray cluster (auto, HOST:PORT or ray://HOST:10001); its workers use their own weights",
    )
    generate.add_argument(
        "--model",
        help="paint at once with an instant model: arbitrary (any painting as --style), styles26 (--style 0…25) "
        "or a trained model (see `train`; --style names its styles)",
    )
    _add_settings_flags(generate)
    generate.set_defaults(func=_generate)

    weights = commands.add_parser("weights", help="say where the VGG19 weights come from; download them if missing")
    weights.add_argument("--no-download", action="store_true", help="only say, never download")
    weights.add_argument("--weights", help="a local weight file to check instead (Keras .h5 or .npz)")
    weights.set_defaults(func=_weights)

    commands.add_parser("styles", help="list the style catalog").set_defaults(func=_styles)


def settings_from_args(args: argparse.Namespace) -> TransferSettings:
    """The preset (or defaults) with every flag that was given applied."""
    base = PRESETS[args.preset] if args.preset else TransferSettings()
    changes = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(TransferSettings)
        if getattr(args, field.name, None) is not None
    }
    if args.style_blend is not None:
        changes["style_blend"] = args.style_blend
    return base.replace(**changes)


def _generate(args: argparse.Namespace) -> int:
    """``generate``: an instant model's one pass with ``--model``, else an optimization."""
    use_compilation_cache()
    check_out(args.out, (".png",))
    if args.model:
        from jaxstyle.cli import instant

        return instant.generate_with_model(args)
    return _optimize(args)


def _optimize(args: argparse.Namespace) -> int:
    from jaxstyle import devices, files, images, inputs, runners, transfer

    if args.strength is not None or args.stroke_px is not None:
        raise JaxstyleError("--strength and --stroke-px are for instant runs of --model arbitrary or styles26")
    settings = settings_from_args(args)
    settings.blend_for(len(args.style))  # the blend rule's own message (SettingsError) for a bad --style-blend
    loaded = None
    backend = ray_cluster(args)  # before anything is loaded or stored
    content = inputs.load_source(args.content)
    styles = [inputs.load_source(spec) for spec in args.style]
    if backend is None:
        loaded = local_weights(args)
        backend = runners.InProcessBackend(lambda: loaded)

    recorder = None
    if not args.no_gallery:
        from jaxstyle.recorder import GalleryRecorder

        recorder = GalleryRecorder.create(
            args.gallery,
            settings,
            content,
            styles,
            title=args.title if args.title is not None else inputs.default_title(content, styles),
            weights=loaded,
            device=devices.description() if loaded is not None else "",
        )
    bar = progress_bar(settings.total_iterations(), unit="it", quiet=args.quiet)

    def on_progress(iterate: transfer.Iterate) -> bool:
        bar.update(iterate.step - bar.n)
        bar.set_postfix(loss=f"{iterate.losses['total']:.4g}", size=iterate.size_px, refresh=False)
        if recorder is not None:
            recorder.progress(iterate)
        return False

    try:
        result = backend.run(
            content.image, [s.image for s in styles], settings, on_progress, report_every=10, preview_every=50
        )
    except BaseException as error:
        bar.close()
        if recorder is not None:
            recorder.fail(error)
        raise
    finally:
        backend.close()
    bar.close()
    files.atomic_write(args.out, images.png_bytes(result.image))
    run_id = recorder.finish(result) if recorder is not None else None
    if args.json:
        print(json.dumps(summary(result, out=str(args.out), run_id=run_id)))
    else:
        print(
            f"wrote {args.out} ({result.image.width}×{result.image.height}) in {result.run_s:.1f} s "
            f"(+{result.compile_s:.1f} s compile) on {result.device}"
            + (f"; gallery run {run_id}" if run_id is not None else ""),
            file=sys.stderr,
        )
    return 0


def summary(result, **extra) -> dict:
    """The one-line JSON summary of a run that ``generate --json`` prints."""
    return {
        **extra,
        "width": result.image.width,
        "height": result.image.height,
        "initial_losses": result.initial_losses,
        "final_losses": result.final_losses,
        "iterations": len(result.loss_history),
        "compile_s": round(result.compile_s, 3),
        "run_s": round(result.run_s, 3),
        "device": result.device,
        "weights_source": result.weights_source,
        "weights": result.weights_description,
        "settings": result.settings.to_dict(),
    }


class _DownloadBar:
    """A download progress callback ``(done_bytes, total_bytes | None)`` drawing a tqdm bar, opened on
    the first report (only then is the total known)."""

    def __init__(self, out: typing.IO[str]) -> None:
        self.out = out
        self.bar = None

    def __call__(self, done_bytes: int, total_bytes: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, file=self.out, desc="VGG19", ncols=79)
        self.bar.update(done_bytes - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _weights(args: argparse.Namespace) -> int:
    """``weights``: say on stdout where the VGG19 weights come from; download them if missing.

    Pretrained weights ready (or only their status asked for, ``--no-download``): exit 0. A bad
    named file or cache, or a failed download, raises: one line on stderr and exit 2
    (:func:`~jaxstyle.cli.common.run_command`).
    """
    from jaxstyle import weights

    status = weights.weights_status(args.weights)
    if status.kind == "fallback" and args.no_download:
        print(f"VGG19 weights: {status.description}")
        return 0
    if status.kind == "fallback":
        print(f"VGG19 weights: not downloaded yet; until they are, jaxstyle uses the {weights.fallback_description()}")
        print(f"downloading {weights.KERAS_FILE_NAME} ({weights.KERAS_SIZE_MB} MB) to {weights.weights_dir()}")
    else:
        print(f"VGG19 weights: {status.description}")
    bar = _DownloadBar(sys.stdout)
    try:
        loaded = weights.load_weights(
            args.weights, allow_download=not args.no_download, allow_fallback=False, progress=bar
        )
    except WeightsError:
        bar.close()
        if status.kind == "fallback":
            print(
                "jaxstyle falls back to random VGG19 weights (not the pretrained model) until the download works;"
                " results made with them are labeled as such."
            )
        raise
    bar.close()
    print(f"ready: {loaded.description}")
    return 0


def _styles(args: argparse.Namespace) -> int:
    from jaxstyle import catalog

    for style in catalog.list_styles():
        where = "local" if catalog.is_available_offline(style.id) else "download"
        print(f"{style.id:32} {style.title} — {style.artist}, {style.year} [{where}]")
    return 0
