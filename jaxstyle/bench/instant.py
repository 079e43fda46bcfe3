"""``python -m jaxstyle.bench --instant``: how fast instant models paint and train, and how good
their images are beside the optimization's.

Three measurements, each in a fresh process (``process.spawn``):

- *Inference* at each size: the first call's compile, the network's pass (median of repeats,
  without compile), the whole call as a user waits for it (resize, pass, conversion), peak memory.
  Speed does not depend on what the params hold, so without ``--model`` an untrained two-style
  network is timed (and the report says so).
- *Training* throughput: images per second at ``--train-size`` px (batch 4) after the first step
  (which compiles), on the photos in ``--data``'s ``content/``.
- *Quality* (with ``--model``): on held-out photos (``--data``'s ``content/``, which the demo
  model never saw, or the photos of ``--quality-photos``), each style of the model: the instant
  image's total loss, beside the photo's own and beside what the default optimization reaches
  after 100 iterations, all scored by the same function (``objective.losses_of``: same VGG19
  weights, layers and relative weights), with the model's own copy of each painting. ``--contact-sheet`` draws them.

A built-in model (``--model arbitrary`` or ``styles26``) is measured by :mod:`jaxstyle.bench.builtin`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import process, sheets, tables

INFERENCE_REPEATS = 5
TRAIN_BATCH = 4
OPTIMIZE_ITERATIONS = 100


def _painter(spec: dict):
    """The model named in ``spec`` (or an untrained two-style network) and its Painter."""
    import numpy as np

    from jaxstyle.instant import models, network
    from jaxstyle.instant.paint import Painter

    if spec.get("model"):
        model = models.load_model(spec["model"], spec.get("gallery"))
    else:
        norms = network.init_norms(2)
        model = models.Model(
            name="untrained",
            styles=("a", "b"),
            net=network.init_net(0),
            norms={k: {kk: np.asarray(vv) for kk, vv in v.items()} for k, v in norms.items()},
            meta={},
            style_images={},
        )
    return model, Painter(model)


def infer_worker(spec: dict) -> dict:
    """One size: compile, the network's pass and the whole call, peak memory."""
    from jaxstyle import devices, images

    photo = images.open_image(Path(spec["photo"]))
    model, painter = _painter(spec)
    styles = list(model.styles[:2])
    blend = [0.5] * len(styles)
    started = time.perf_counter()
    first = painter.paint(photo, styles, blend, size_px=spec["size_px"])
    first_call_s = time.perf_counter() - started
    passes, calls = [], []
    for _ in range(INFERENCE_REPEATS):
        started = time.perf_counter()
        result = painter.paint(photo, styles, blend, size_px=spec["size_px"])
        calls.append(time.perf_counter() - started)
        passes.append(result.run_s)
    memory, memory_kind = process.peak_memory_gib()
    return {
        "size": list(first.image.size),
        "compile_s": first.compile_s,
        "first_call_s": first_call_s,
        "run_s": statistics.median(passes),
        "call_s": statistics.median(calls),
        "peak_memory_gib": memory,
        "memory_kind": memory_kind,
        "device": devices.description(),
    }


def train_worker(spec: dict) -> dict:
    """Images per second of training at one size (batch TRAIN_BATCH), after the compiling first step."""
    from jaxstyle import devices, images, weights
    from jaxstyle.instant import train

    loaded = weights.load_weights()
    painting = images.open_image(Path(spec["painting"]))
    settings = train.TrainSettings(
        size_px=spec["size_px"], steps=spec["steps"] + 1, batch=TRAIN_BATCH, checkpoint_every=10**6
    )
    step_ends: list[float] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        train.train(
            "throughput",
            [("painting", painting)],
            spec["photos"],
            settings,
            loaded,
            gallery_path=Path(folder) / "gallery.db",
            callback=lambda progress: step_ends.append(time.perf_counter()) and None,
            report_every=1,
        )
    steps = len(step_ends) - 1
    return {
        "first_step_s": step_ends[0] - started,
        "images_per_s": steps * TRAIN_BATCH / (step_ends[-1] - step_ends[0]),
        "crop_px": settings.crop_px,
        "steps_timed": steps,
        "peak_memory_gib": process.peak_memory_gib()[0],
        "weights_source": loaded.source,
        "device": devices.description(),
    }


def quality_worker(spec: dict) -> dict:
    """The photos × the model's styles: instant, photo and optimization (100 iterations unless the
    spec says) losses."""
    from jaxstyle import images, objective, transfer, weights
    from jaxstyle.settings import TransferSettings

    loaded = weights.load_weights()
    model, painter = _painter(spec)
    size_px = spec["size_px"]
    settings = TransferSettings(size_px=size_px, iterations=spec.get("iterations", OPTIMIZE_ITERATIONS))
    out_dir = Path(spec["image_dir"])
    rows = []
    for photo_path in spec["photos"]:
        photo = images.open_image(Path(photo_path))
        resized = images.fit_long_side(photo.convert("RGB"), size_px)
        for style in model.styles:
            painting = model.style_image(style)
            instant = painter.paint(photo, [style], size_px=size_px)
            optimized = transfer.stylize(photo, [painting], settings, loaded)
            scores = {
                "instant": objective.losses_of(instant.image, photo, [painting], settings, loaded)["total"],
                "photo_loss": objective.losses_of(resized, photo, [painting], settings, loaded)["total"],
                "optimized": objective.losses_of(optimized.image, photo, [painting], settings, loaded)["total"],
            }
            stem = f"{Path(photo_path).stem}_{style}"
            instant.image.save(out_dir / f"{stem}_instant.png")
            optimized.image.save(out_dir / f"{stem}_optimized.png")
            rows.append({
                "photo": Path(photo_path).stem,
                "photo_file": str(photo_path),
                "style": style,
                **scores,
                "instant_s": instant.run_s,
                "optimized_s": optimized.run_s,
            })  # fmt: skip
    return {"rows": rows, "model_meta": {k: v for k, v in model.meta.items() if k != "loss_history"}}


def contact_sheet(report: dict, image_dir: Path, dest: Path, *, cell_px: int = 192) -> Path:
    """A row per scored photo and style: the photo, the painting, the instant image, the
    100-iteration optimization."""
    from PIL import Image

    from jaxstyle import images
    from jaxstyle.instant import models

    model = models.load_model(report["model"], report.get("gallery"))
    rows = [
        [
            images.open_image(Path(row["photo_file"])),
            model.style_image(row["style"]),
            Image.open(image_dir / f"{row['photo']}_{row['style']}_instant.png"),
            Image.open(image_dir / f"{row['photo']}_{row['style']}_optimized.png"),
        ]
        for row in report["quality"]["rows"]
    ]
    title = (
        f"photo | painting | instant ({report['model']}) | "
        f"optimized {report.get('quality_iterations', OPTIMIZE_ITERATIONS)} it, "
        f"{report['quality_size_px']} px, {report['weights_source']}"
    )
    return sheets.save(sheets.grid(rows, cell_px, title), dest)


def format_table(report: dict) -> str:
    lines = [
        f"Inference ({report['inference_model']}), {report['device']}:",
        *tables.header("size", "image px", "compile s", "first call s", "network pass s", "whole call s",
                       "peak memory GiB"),
    ]  # fmt: skip
    for size_px, row in tables.by_size(report["inference"]):
        lines.append(tables.row(
            size_px, tables.shape(row['size']), f"{row['compile_s']:.2f}", f"{row['first_call_s']:.2f}",
            f"{row['run_s']:.3f}", f"{row['call_s']:.3f}", f"{row['peak_memory_gib']:.2f} ({row['memory_kind']})",
        ))  # fmt: skip
    if training := report.get("training"):
        crop_px = training.get("crop_px", report["train_size_px"])
        lines.append(
            f"\nTraining at {report['train_size_px']} px, {crop_px} px crops, batch {TRAIN_BATCH}: "
            f"{training['images_per_s']:.2f} images/s over {training['steps_timed']} steps (first step, compiling: "
            f"{training['first_step_s']:.1f} s), peak memory {training['peak_memory_gib']:.2f} GiB."
        )
    if report.get("quality"):
        rows = report["quality"]["rows"]
        ratios = [r["instant"] / r["optimized"] for r in rows]
        lines += [
            f"\nQuality of {report['model']} on the photos of {report.get('quality_photos', 'content/')} "
            f"at {report['quality_size_px']} px "
            f"(total loss; weights: {report['weights_source']}):",
            "| photo | style | photo's own | instant | "
            f"optimized {report.get('quality_iterations', OPTIMIZE_ITERATIONS)} it | instant ÷ optimized |",
            "|---|---|---|---|---|---|",
        ]
        for row, ratio in zip(rows, ratios, strict=True):
            lines.append(
                f"| {row['photo']} | {row['style']} | {row['photo_loss']:.4f} | {row['instant']:.4f} | "
                f"{row['optimized']:.4f} | {ratio:.2f}× |"
            )
        lines.append(f"\ninstant ÷ optimized: median {statistics.median(ratios):.2f}×, worst {max(ratios):.2f}×")
    return "\n".join(lines)


def check(args: Any, error: Callable[[str], None]) -> dict:
    """``--instant``'s arguments checked (a trained model, or none); what :func:`run` measures."""
    from jaxstyle.errors import JaxstyleError
    from jaxstyle.instant import train

    if args.quality_iterations < 1:
        error("--quality-iterations must be at least 1")
    data: Path = args.data
    photos, quality_photos = [], []
    try:
        photos = train.photo_files(data / "content")
        quality_photos = train.photo_files(args.quality_photos) if args.quality_photos else photos
    except JaxstyleError as failure:
        error(str(failure))
    if not photos:
        error(f"no photos in {data / 'content'} (see --data)")
    if not quality_photos:
        error(f"no photos in {args.quality_photos} (see --quality-photos)")
    if args.model:
        from jaxstyle.instant import models

        try:
            models.load_model(args.model, args.gallery)
        except JaxstyleError as failure:
            error(str(failure))
    return {"photos": photos, "quality_photos": quality_photos}


def run(args: Any, plan: dict, log: Callable[[str], None]) -> dict:
    """``--instant`` (a trained model, or none), with the bench's parsed arguments."""
    data: Path = args.data
    photos, quality_photos = plan["photos"], plan["quality_photos"]
    sizes: Sequence[int] = [int(s) for s in args.instant_sizes.split(",") if s]
    common = {"model": args.model, "gallery": str(args.gallery) if args.gallery else None}
    report: dict[str, Any] = {
        "machine": process.machine(),
        "model": args.model,
        "gallery": common["gallery"],
        "inference_model": f"model {args.model}" if args.model else "an untrained two-style network",
        "inference": {},
    }
    for size_px in sizes:
        log(f"inference at {size_px} px…")
        row = process.spawn({"kind": "instant_infer", "photo": str(photos[0]), "size_px": size_px, **common}, 1800)
        report["inference"][str(size_px)] = row
        report["device"] = row["device"]
        log(f"  {row['run_s']:.3f} s per pass, compile {row['compile_s']:.2f} s")
    if args.train_steps:
        log(f"training throughput at {args.train_size} px…")
        report["train_size_px"] = args.train_size
        report["training"] = process.spawn(
            {
                "kind": "instant_train",
                "photos": str(data / "content"),
                "painting": str(sorted((data / "styles").glob("*.jpg"))[0]),
                "size_px": args.train_size,
                "steps": args.train_steps,
            },
            3600,
        )
    if args.model:
        log(f"quality on the photos of {quality_photos[0].parent}…")
        image_dir = args.images or Path(tempfile.mkdtemp(prefix="jaxstyle-instant-images-"))
        image_dir.mkdir(parents=True, exist_ok=True)
        quality = process.spawn(
            {
                "kind": "instant_quality",
                "photos": [str(p) for p in quality_photos],
                "size_px": args.quality_size,
                "image_dir": str(image_dir),
                "iterations": args.quality_iterations,
                **common,
            },
            7200,
        )
        report["quality"] = quality
        report["quality_size_px"] = args.quality_size
        report["quality_iterations"] = args.quality_iterations
        report["quality_photos"] = str(quality_photos[0].parent)
        report["weights_source"] = report.get("training", {}).get("weights_source") or quality["model_meta"].get(
            "train", {}
        ).get("weights_source", "")
        if args.contact_sheet:
            contact_sheet(report, image_dir, args.contact_sheet)
    return report
