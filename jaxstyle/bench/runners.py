"""``python -m jaxstyle.bench --runners``: runs per minute through the job queue, in this process
and on a Ray cluster with 1 and 2 workers, the time Ray adds to each run, and how many runs per
minute the app host's gallery can take.

Each runner first paints one warm-up run per worker (JAX compiles once per worker and shape).
Then runs of ``--runner-size`` px × ``--runner-iterations`` one at a time, with progress polled
every 10 ms: 3 reporting after every step, for *start* (submit → first iteration reported; for
Ray: the trip to a worker and back) and for the cost of streaming a report per step; 3 reporting
every 10 steps as the app does, for the time a run takes alone and *store* (last iteration
reported → result stored in the gallery; for Ray: the result's trip back).

Then ``--runner-runs`` runs are submitted at once and timed from the first submit to the last
stored result: runs per minute.

Without ``--ray-address`` a Ray head is started on 127.0.0.1 with 2 CPUs, and stopped at the end.

The gallery's own rate is measured apart: the writes one run makes (inputs and run added, started,
a report every 10 steps of which every other carries a preview, the image and history stored),
repeated, on a fresh SQLite file.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxstyle import gallery, images, inputs
from jaxstyle.bench import process
from jaxstyle.runs import DONE
from jaxstyle.settings import TransferSettings

if TYPE_CHECKING:  # both import JAX, which the bench's worker processes must not (see bench.workers)
    from jaxstyle import runners
    from jaxstyle.jobs import JobRunner

GALLERY_RUN_STEPS = 100  # the steps of the run whose gallery writes are timed
GALLERY_REPEATS = 40
LATENCY_RUNS = 3  # runs timed one at a time, for the time Ray adds to each


def _time_runner(
    name: str,
    backend: runners.Backend | None,
    settings: TransferSettings,
    runs: int,
    content: inputs.LoadedImage,
    style: inputs.LoadedImage,
    folder: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from jaxstyle.jobs import JobRunner

    jobs = JobRunner(folder / f"{name}.db", backend=backend, report_every=10, preview_every=20, max_queued=runs + 4)
    try:
        workers = jobs.backend.connect()
        log(f"{name}: warming up {workers} worker(s)")
        for report_every in (1, 10):  # the chunk of steps between reports is compiled: both sizes
            jobs.report_every = report_every
            _follow(jobs, [jobs.submit(settings, content, [style]) for _ in range(workers)], settings)
        log(f"{name}: {2 * LATENCY_RUNS} runs one at a time (a report per step, then as the app), {runs} at once")
        jobs.report_every = 1  # a report after each step, so "start" ends at the first iteration
        per_step = [_follow(jobs, [jobs.submit(settings, content, [style])], settings) for _ in range(LATENCY_RUNS)]
        jobs.report_every = 10  # as the app reports
        alone = [_follow(jobs, [jobs.submit(settings, content, [style])], settings) for _ in range(LATENCY_RUNS)]
        started = time.perf_counter()
        _follow(jobs, [jobs.submit(settings, content, [style]) for _ in range(runs)], settings)
        wall_s = time.perf_counter() - started
    finally:
        jobs.shutdown()
    start_s = [times["start_s"] for [times] in per_step]
    store_s = [times["store_s"] for [times] in alone]
    return {
        "runner": name,
        "workers": workers,
        "runs": runs,
        "wall_s": wall_s,
        "runs_per_min": 60 * runs / wall_s,
        "start_s_median": statistics.median(start_s),
        "store_s_median": statistics.median(store_s),
        "alone_s_median": statistics.median(times["total_s"] for [times] in alone),
        "alone_s_median_reporting_every_step": statistics.median(times["total_s"] for [times] in per_step),
    }


def _follow(jobs: JobRunner, run_ids: list[int], settings: TransferSettings) -> list[dict[str, float]]:
    """Wait for runs to be stored, polling every 10 ms; per run: submit → first report, last
    report → stored, and the whole. Fails on a run that did not end done."""
    submitted = time.perf_counter()
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    stored: dict[int, float] = {}
    while len(stored) < len(run_ids):
        now = time.perf_counter()
        for run_id in run_ids:
            progress = jobs.progress(run_id)
            if run_id in stored or progress is None:
                continue
            if progress.step >= 1:
                first.setdefault(run_id, now)
            if progress.step >= settings.total_iterations():
                last.setdefault(run_id, now)
            if progress.finished:
                if progress.status != DONE:
                    raise RuntimeError(f"run {run_id} ended {progress.status}: {progress.error}")
                stored[run_id] = now
        time.sleep(0.01)
    return [
        {
            "start_s": first.get(i, stored[i]) - submitted,
            "store_s": stored[i] - last.get(i, stored[i]),
            "total_s": stored[i] - submitted,
        }
        for i in run_ids
    ]


def gallery_rate(content: inputs.LoadedImage, style: inputs.LoadedImage, folder: Path, size_px: int) -> dict:
    """Runs per minute the gallery takes: each run's writes as the job queue makes them."""
    settings = TransferSettings(size_px=size_px, iterations=GALLERY_RUN_STEPS)
    image = content.image.copy()
    image.thumbnail((size_px, size_px))
    png = images.png_bytes(image)
    losses = {"total": 1.0, "content": 0.5, "style": 0.4, "tv": 0.1}
    history = [{"step": step, "size_px": size_px, **losses} for step in range(1, GALLERY_RUN_STEPS + 1)]
    path = folder / "gallery-rate.db"
    seconds = []
    for _ in range(GALLERY_REPEATS):
        started = time.perf_counter()
        with gallery.connect(path) as db:  # the submit: inputs (stored once, then found) and the run
            content_sha = gallery.store_image(db, content.data, origin_kind="upload", origin="photo")
            style_sha = gallery.store_image(db, style.data, origin_kind="upload", origin="painting")
            run_id = gallery.add_run(db, settings.to_dict(), content_sha=content_sha, style_shas=[style_sha])
        with gallery.connect(path) as db:
            gallery.start_run(db, run_id, total_steps=GALLERY_RUN_STEPS)
        for step in range(10, GALLERY_RUN_STEPS + 1, 10):  # a connection per write, as the recorder
            with gallery.connect(path) as db:
                preview = png if step % 20 == 0 else None
                gallery.record_progress(
                    db, run_id, step=step, total_steps=GALLERY_RUN_STEPS, losses=losses, preview_png=preview
                )
        with gallery.connect(path) as db:
            gallery.finish_run(
                db, run_id, image_png=png, initial_losses=losses, final_losses=losses, loss_history=history,
                compile_s=0.0, run_s=1.0, device="cpu", weights_source="random-fallback",
            )  # fmt: skip
        seconds.append(time.perf_counter() - started)
    per_run = statistics.median(seconds)
    return {
        "steps_per_run": GALLERY_RUN_STEPS,
        "writes_per_run": 3 + GALLERY_RUN_STEPS // 10 + 1,
        "s_per_run_median": per_run,
        "s_per_run_worst": max(seconds),
        "runs_per_min": 60 / per_run,
    }


def run_benchmark(
    *,
    size_px: int,
    iterations: int,
    runs: int,
    ray_address: str | None,
    content_path: Path,
    style_path: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from jaxstyle import devices, runners
    from jaxstyle.runners import ray_cluster

    settings = TransferSettings(size_px=size_px, iterations=iterations)
    content = inputs.load_source(str(content_path))
    style = inputs.load_source(str(style_path))
    report: dict[str, Any] = {
        "machine": process.machine(),
        "settings": {"size_px": size_px, "iterations": iterations, "runs": runs},
        "device": devices.description(),
        "cpus": os.cpu_count(),
        "runners": [],
    }
    with tempfile.TemporaryDirectory(prefix="jsbench-", dir="/tmp") as temp:
        folder = Path(temp)
        report["gallery"] = gallery_rate(content, style, folder, size_px)
        log(f"gallery: {report['gallery']['runs_per_min']:.0f} runs/min")
        report["runners"].append(_time_runner("in-process", None, settings, runs, content, style, folder, log))
        address = ray_address
        if address is None:
            address = ray_cluster.start_local_head(num_cpus=2, temp_dir=str(folder / "ray"))
            report["cluster"] = "a Ray head started on 127.0.0.1 with 2 CPUs (this machine)"
        else:
            report["cluster"] = address
        try:
            for workers in (1, 2):
                backend = runners.backend_for(address, workers=workers)
                report["runners"].append(
                    _time_runner(f"ray-{workers}", backend, settings, runs, content, style, folder, log)
                )
        finally:
            if ray_address is None:
                ray_cluster.stop_local_heads()
    return report


def format_table(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"runners: {s['runs']} runs of {s['size_px']} px × {s['iterations']} iterations, "
        f"{report['cpus']} CPUs, {report['device']}; cluster: {report['cluster']}",
        "",
        "| runner | workers | runs/min (all at once) | wall s | one run alone s | alone, a report per step s "
        "| submit → first iteration s | last iteration → stored s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runners"]:
        lines.append(
            f"| {r['runner']} | {r['workers']} | {r['runs_per_min']:.1f} | {r['wall_s']:.1f} | "
            f"{r['alone_s_median']:.2f} | {r['alone_s_median_reporting_every_step']:.2f} | "
            f"{r['start_s_median']:.2f} | {r['store_s_median']:.3f} |"
        )
    base = report["runners"][0]
    for r in report["runners"][1:]:
        lines.append(
            f"{r['runner']} adds {r['alone_s_median'] - base['alone_s_median']:+.2f} s per run alone "
            f"(start {r['start_s_median'] - base['start_s_median']:+.2f} s, "
            f"store {r['store_s_median'] - base['store_s_median']:+.3f} s)"
        )
    g = report["gallery"]
    lines += [
        "",
        f"gallery: one run's writes ({g['writes_per_run']} writes for {g['steps_per_run']} steps, "
        f"progress every 10, a preview every 20) take {g['s_per_run_median'] * 1000:.1f} ms "
        f"(worst {g['s_per_run_worst'] * 1000:.1f}): {g['runs_per_min']:.0f} runs/min",
    ]
    return "\n".join(lines)


def check(args: Any, error: Callable[[str], None]) -> dict:
    """``--runners``' arguments checked; the photo and painting it paints."""
    if args.runner_runs < 1 or args.runner_iterations < 1:
        error("--runner-runs and --runner-iterations must be at least 1")
    content, style = args.data / args.content, args.data / args.style
    for path in (content, style):
        if not path.is_file():
            error(f"image {path} not found (see --data)")
    if args.ray_address:
        from jaxstyle.runners.ray_cluster import ray_endpoint

        ray_endpoint(args.ray_address)  # a bad address, before minutes of in-process runs
    return {"content": content, "style": style}


def run(args: Any, plan: dict, log: Callable[[str], None]) -> dict:
    """``--runners``, with the bench's parsed arguments."""
    started = time.perf_counter()
    report = run_benchmark(
        size_px=args.runner_size,
        iterations=args.runner_iterations,
        runs=args.runner_runs,
        ray_address=args.ray_address,
        content_path=plan["content"],
        style_path=plan["style"],
        log=log,
    )
    report["total_s"] = time.perf_counter() - started
    return report
