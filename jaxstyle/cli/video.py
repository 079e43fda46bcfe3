"""``python -m jaxstyle video IN --style PAINTING --out OUT.mp4``: paint a video file with an
instant model, keep its frames, rate, duration and audio, and store it in the gallery."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxstyle.cli.common import add_gallery_flag, check_out, progress_bar, use_compilation_cache
from jaxstyle.errors import JaxstyleError


def register(commands: argparse._SubParsersAction) -> None:
    """Register ``video``."""
    from jaxstyle.instant.builtin import ARBITRARY
    from jaxstyle.video.files import DEFAULT_LIMITS, OUTPUT_SUFFIXES
    from jaxstyle.video.flicker import DEFAULT_SMOOTH
    from jaxstyle.video.frames import DEFAULT_WORK_PX

    video = commands.add_parser(
        "video",
        help="paint a video file frame by frame with an instant model (audio kept)",
        description=f"Paint a video with an instant model. Videos are {DEFAULT_LIMITS.describe()}.",
    )
    video.add_argument("input", type=Path, help="the video: MP4, WebM, MOV, MKV")
    video.add_argument(
        "--style",
        action="append",
        required=True,
        help="arbitrary: a painting (path, URL or catalog id); styles26: 0…25; a trained model: its style; "
        "repeat to blend",
    )
    video.add_argument("--style-blend", type=_floats, help="weight per --style, e.g. 0.7,0.3")
    video.add_argument("--model", default=ARBITRARY, help=f"arbitrary, styles26 or a trained model ({ARBITRARY})")
    video.add_argument(
        "--size",
        type=int,
        default=DEFAULT_WORK_PX,
        dest="work_px",
        help=f"the long side each frame is painted at (default {DEFAULT_WORK_PX}); the video keeps its own size",
    )
    video.add_argument(
        "--strength", type=float, default=1.0, help="arbitrary: 1 = the painting's style … 0 = the video's own"
    )
    video.add_argument(
        "--smooth",
        type=float,
        default=DEFAULT_SMOOTH,
        help=f"0–0.95: the previous frame's share where nothing moved, against flicker (default {DEFAULT_SMOOTH})",
    )
    video.add_argument("--out", required=True, type=Path, help=f"the painted video ({', '.join(OUTPUT_SUFFIXES)})")
    add_gallery_flag(video)
    video.add_argument("--no-gallery", action="store_true", help="do not store the run in the gallery")
    video.add_argument("--title", help="title of the run in the gallery (default: first frame × paintings)")
    video.add_argument("--json", action="store_true", help="print one JSON summary line on stdout")
    video.add_argument("--quiet", action="store_true", help="no progress bar")
    video.set_defaults(func=_video)


def _floats(text: str) -> tuple[float, ...] | None:
    from jaxstyle import inputs

    try:
        return inputs.parse_floats(text, what="--style-blend")
    except JaxstyleError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _video(args: argparse.Namespace) -> int:
    """Every check before any work (the model, styles, sizes, the file's header), then paint."""
    from jaxstyle import devices, inputs
    from jaxstyle.instant import builtin
    from jaxstyle.video import files
    from jaxstyle.video import run as video_run

    check_out(args.out, files.OUTPUT_SUFFIXES)
    if args.out.resolve() == args.input.resolve():
        raise JaxstyleError("--out is the input video; choose another file")
    use_compilation_cache()
    files.probe(args.input)  # a file that is no video, or too big: one line before the model loads
    painter = video_run.painter_for(args.model, args.gallery)
    if isinstance(painter, builtin.ArbitraryPainter):
        styles: tuple = tuple(inputs.load_source(spec) for spec in args.style)
    else:
        styles = tuple(spec.strip() for spec in args.style)
    request = video_run.VideoRequest(
        args.input, model=args.model, styles=styles, blend=args.style_blend, work_px=args.work_px,
        strength=args.strength, smooth=args.smooth, title=args.title,
    )  # fmt: skip
    prepared = video_run.prepare(request, painter)
    expected = prepared.info.frames or round(prepared.info.duration_s * prepared.info.fps)
    with progress_bar(expected, unit="frame", quiet=args.quiet) as bar:

        def progress(done: int, total: int) -> bool:
            bar.total = max(total, done)
            bar.update(done - bar.n)
            return False

        result = video_run.paint_prepared(prepared, args.out, progress=progress)
    run_id = None
    if not args.no_gallery:
        recorder = video_run.add_run(prepared, args.gallery, start=True)
        try:
            run_id = video_run.finish_run(recorder, result)
        except BaseException as error:
            recorder.fail(error)
            raise
    stats = result.stats()
    if args.json:
        styles_named = [s.origin for s in styles] if isinstance(painter, builtin.ArbitraryPainter) else list(styles)
        summary = {
            "out": str(args.out), "run_id": run_id, "method": "video", "model": prepared.model,
            "styles": styles_named, "style_blend": list(prepared.settings.blend_for(len(styles))),
            "work_px": args.work_px, "strength": args.strength, "smooth": prepared.settings.smooth,
            "device": devices.description(), **stats,
        }  # fmt: skip
        print(json.dumps(summary))
    else:
        flicker = f", flicker {stats['flicker']:.2f}" if stats["flicker"] is not None else ""
        print(
            f"wrote {args.out} ({result.frames} frames, {result.width}×{result.height}, {result.fps:g} fps"
            f"{', audio kept' if result.has_audio else ''}) in {result.total_s:.1f} s: {result.frames_per_s:.1f} "
            f"frames/s ({stats['realtime']}× real time{flicker})" + (f"; gallery run {run_id}" if run_id else ""),
            file=sys.stderr,
        )
    return 0
