"""``python -m jaxstyle.bench`` (the speed table): how fast jaxstyle is, beside a PyTorch peer.

For each size and configuration it measures, each in fresh processes so nothing leaks between
them: the compile overhead of the first run (an empty persistent cache), the overhead of the same
run in a second process (the persistent cache filled), seconds per iteration (median over chunks
after a warm-up chunk), peak memory (RSS; device memory on a GPU) and time-to-quality: the wall
time until the total loss drops below the loss the PyTorch Adam peer reaches after ``--iterations``
steps (without ``--peer``: the loss jaxstyle's own Adam reaches). Every figure is also given as a
ratio to the peer's, measured in the same invocation on the same machine.

The peer (:mod:`jaxstyle.bench.pytorch_peer`) uses the same params, inputs and loss definitions,
so losses are comparable number for number; it runs eager and with ``torch.compile``, and the
faster counts (:mod:`jaxstyle.bench.peer_runs`). It needs PyTorch: ``pip install torch==2.13.0``
(CPU wheel).

The benchmark is not a test: tests/test_bench.py only checks that it runs and writes its JSON.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import peer_runs, process
from jaxstyle.bench.process import CLASSIC
from jaxstyle.bench.tables import fmt
from jaxstyle.settings import TransferSettings

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


def jax_worker(spec: dict) -> dict:
    """One configuration at one size: compile overhead, and what ``spec["measure"]`` asks (seconds
    per iteration, the reference's loss and time, time-to-quality)."""
    started = time.perf_counter()
    from jaxstyle import images, transfer, weights
    from jaxstyle.errors import Cancelled

    transfer.enable_compilation_cache(spec["cache_dir"])
    loaded = weights.load_weights()
    content, style = images.open_image(spec["content"]), images.open_image(spec["style"])
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

    out["peak_gib"], out["memory_kind"] = process.peak_memory_gib()
    return out


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
    log: Callable[[str], None] = print,
    compile_backend: str = peer_runs.COMPILE_BACKEND,
) -> dict:
    """Measure every (size, configuration); returns the report that ``--json`` writes."""
    report: dict[str, Any] = {
        "machine": process.machine(),
        "iterations": iterations,
        "chunk": CHUNK,
        "content": str(content),
        "style": str(style),
        "rows": [],
        "peer": {},
    }
    with tempfile.TemporaryDirectory(prefix="jaxstyle-bench-") as tmp:
        base = {"content": str(content), "style": str(style), "out_dir": tmp}
        jobs = [peer_runs.inputs_job(content, style, size_px, f"inputs_{size_px}.npz") for size_px in sizes]
        prepared = process.spawn({"kind": "prepare", "out_dir": tmp, "jobs": jobs}, 900)
        report.update(weights=prepared["weights"], weights_source=prepared["weights_source"], device=prepared["device"])
        for size_px in sizes:
            shape = prepared["shapes"][f"inputs_{size_px}.npz"]
            threshold = None
            reference_s = None
            if peer:
                log(f"{size_px} px: PyTorch peer, classic Adam × {iterations}, eager and compiled …")
                settings = config_settings("adam", size_px, iterations)
                spec = {"out_dir": tmp, "inputs": f"inputs_{size_px}.npz", "settings": settings.to_dict(),
                        "iterations": iterations}  # fmt: skip
                result = peer_runs.measure_peer(spec, compile_backend=compile_backend, log=log)
                threshold, reference_s = result["final_loss"], result["run_s"]
                report["peer"][str(size_px)] = {**result, "threshold": threshold, "ttq_s": reference_s, "shape": shape}
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
                first = process.spawn(spec, 3600)
                second = process.spawn({**spec, "measure": []}, 3600)
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
                f"| {size_px} ({shape}) | PyTorch Adam (peer, {peer.get('mode', 'eager')}) | — | — | "
                f"{peer['s_per_it']:.3f} | 1 | "
                f"{peer['peak_gib']:.2f} | {peer['ttq_s']:.1f} | 1 |"
            )
        for r in rows:
            ttq = fmt(r["ttq_s"], ".1f")
            if r["ttq_s"] is not None and not r["ttq_reached"]:
                ttq = f"> {ttq} (not reached)"
            name = f"jaxstyle {r['config']}" + (" (reference)" if not peer and r["config"] == "adam" else "")
            lines.append(
                f"| {size_px} ({shape}) | {name} | {r['compile_s']:.1f} | {r['second_process_overhead_s']:.2f} | "
                f"{fmt(r['s_per_it'], '.3f')} | {fmt(r.get('s_per_it_vs_peer'), '.2f', '×')} | "
                f"{r['peak_gib']:.2f} | {ttq} | {fmt(r.get('ttq_vs_peer'), '.2f', '×')} |"
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
    peers = [peer for peer in report["peer"].values() if "modes" in peer]
    if peers:
        lines.append(peer_runs.modes_line(peers))
    for config, rows in sorted(report.get("scaling", {}).items()):
        growth = ", ".join(
            f"{r['size_px']} px: pixels ×{r['pixels_ratio']:.1f}, s/it ×{fmt(r['s_per_it_ratio'], '.1f')}, "
            f"memory ×{r['peak_ratio']:.1f}"
            for r in rows[1:]
        )
        lines.append(f"Growth ({config}, against {rows[0]['size_px']} px): {growth}.")
    return "\n".join(lines)


def _parse_list(text: str, kind=str) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def check(args: Any, error: Callable[[str], None]) -> dict:
    """The speed table's arguments checked; what :func:`run` measures."""
    # adam first: without the peer, its run sets the quality bar for the others.
    configs = sorted(_parse_list(args.configs), key=lambda c: c != "adam")
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown or args.repeats < 1 or args.iterations < 1:
        error(f"unknown configuration(s) {', '.join(unknown)}" if unknown else "repeats and iterations ≥ 1")
    if args.peer:
        peer_runs.check_installed(error)
    content, style = args.data / args.content, args.data / args.style
    for path in (content, style):
        if not path.is_file():
            error(f"image {path} not found (see --data)")
    return {"configs": configs, "content": content, "style": style}


def run(args: Any, plan: dict, log: Callable[[str], None]) -> dict:
    """The speed table, with the bench's parsed arguments."""
    started = time.perf_counter()
    report = run_benchmark(
        _parse_list(args.sizes, int),
        args.iterations,
        peer=args.peer,
        configs=plan["configs"],
        ttq=_parse_list(args.ttq),
        repeats=args.repeats,
        content=plan["content"],
        style=plan["style"],
        log=log,
        compile_backend=args.torch_compile_backend,
    )
    report["total_s"] = time.perf_counter() - started
    return report
