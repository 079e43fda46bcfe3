"""The PyTorch peer's runs, for the speed table and the evaluation set alike.

A JAX process writes what the peer needs as files (:func:`prepare_worker`: the VGG params and each
pair's inputs at its working shape), because the peer's own process must not import JAX (that
would add JAX's memory to the peer's). The peer then runs its classic Adam at its best: eager and
with ``torch.compile``, each in a fresh process (:func:`peer_worker`), and the faster of the two is
the peer's figure (:func:`measure_peer`); both runs, their loss histories included, stay in the
report.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxstyle.bench import process
from jaxstyle.settings import TransferSettings

# torch.compile's backend for the peer's compiled run (its default, code generated for this CPU).
COMPILE_BACKEND = "inductor"
# The loss terms of each entry of a run's loss history, in order.
LOSS_TERMS = ("total", "content", "style", "tv")
# The first steps warm up oneDNN's caches: seconds per iteration is the median of the steps after.
_WARM_STEPS = 5


def check_installed(error: Callable[[str], None]) -> None:
    """A usage error unless PyTorch is installed (the peer is optional)."""
    if importlib.util.find_spec("torch") is None:
        error("--peer needs PyTorch: pip install torch==2.13.0 (the CPU wheel)")


def inputs_job(content: str | Path, style: str | Path, size_px: int, file: str) -> dict:
    """One entry of :func:`prepare_worker`'s ``jobs``: a pair at one size, written to ``file``."""
    return {"content": str(content), "style": str(style), "size_px": size_px, "file": file}


def prepare_worker(spec: dict) -> dict:
    """Write the params and each job's content and style, resized to the working shape jaxstyle
    paints that size at, into ``spec["out_dir"]``; the weights, the device and each file's shape."""
    import numpy as np
    from PIL import Image

    from jaxstyle import devices, images, objective, weights

    loaded = weights.load_weights()
    out_dir = Path(spec["out_dir"])
    process.save_params(loaded.params, out_dir)
    defaults = TransferSettings()
    layers = defaults.content_layers + defaults.style_layers
    shapes = {}
    for job in spec["jobs"]:
        arrays = {}
        for key in ("content", "style"):
            image = images.open_image(Path(job[key]))
            height, width = objective.working_shape(image, job["size_px"], layers)
            arrays[key] = images.to_array(image.resize((width, height), Image.Resampling.LANCZOS))
        np.savez(out_dir / job["file"], **arrays)
        shapes[job["file"]] = list(arrays["content"].shape[:2])
    return {
        "weights": loaded.description,
        "weights_source": loaded.source,
        "device": devices.description(),
        "shapes": shapes,
    }


def peer_worker(spec: dict) -> dict:
    """The peer's classic Adam on one prepared pair (``inputs``, in ``out_dir``), eager or compiled
    with ``compile_backend``: its times, its loss history and its peak memory."""
    import numpy as np
    import torch

    from jaxstyle.bench import pytorch_peer

    torch.manual_seed(0)
    params = process.load_params(Path(spec["out_dir"]))
    inputs = np.load(Path(spec["out_dir"]) / spec["inputs"])
    settings = TransferSettings.from_dict(spec["settings"])
    backend = spec.get("compile_backend")
    record = pytorch_peer.stylize_adam(
        params, inputs["content"], inputs["style"], settings, spec["iterations"], compile_backend=backend
    )
    per_step = np.diff(np.concatenate([[record["targets_s"]], record["step_end_s"]]))
    return {
        "backend": backend or "eager",
        "run_s": float(record["step_end_s"][-1]),
        "s_per_it": float(np.median(per_step[min(_WARM_STEPS, len(per_step) - 1) :])),
        "compile_s": record["compile_s"],
        "targets_s": record["targets_s"],
        "final_loss": record["final_loss"],
        "initial_losses": record["losses"][0].tolist(),
        "loss_history": record["losses"].tolist(),
        "loss_terms": list(LOSS_TERMS),
        "peak_gib": process.peak_memory_gib()[0],
        "memory_kind": "rss",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def measure_peer(
    spec: dict, *, log: Callable[[str], None], compile_backend: str = COMPILE_BACKEND, timeout_s: float = 3600
) -> dict[str, Any]:
    """The peer on one prepared pair (``spec``: :func:`peer_worker`'s without the backend), eager and
    compiled, each in a fresh process; the faster run's figures, with both runs under ``modes``.
    A compiled run that fails (no C++ compiler, say) is kept as its error, and eager counts."""
    runs: dict[str, dict] = {}
    for mode, backend in (("eager", None), ("compiled", compile_backend)):
        try:
            runs[mode] = process.spawn({**spec, "kind": "peer", "compile_backend": backend}, timeout_s)
        except RuntimeError as error:
            if mode == "eager":
                raise
            log(f"  the peer compiled with torch.compile ({compile_backend}) failed: eager counts")
            runs[mode] = {"backend": backend, "error": str(error)[-2000:]}
    return fastest(runs)


def fastest(runs: dict[str, dict]) -> dict[str, Any]:
    """The figures of the run that took least time (its loss history is in ``modes``), which
    ``mode`` that was, and every run as measured."""
    timed = [mode for mode, run in runs.items() if "run_s" in run]
    mode = min(timed, key=lambda name: runs[name]["run_s"])
    figures = {key: value for key, value in runs[mode].items() if key != "loss_history"}
    return {**figures, "mode": mode, "modes": runs}


def modes_line(peers: Sequence[dict]) -> str:
    """How the peer ran: per mode, its time of each run, and which counted."""
    parts = []
    for mode in ("eager", "compiled"):
        runs = [peer["modes"][mode] for peer in peers if mode in peer.get("modes", {})]
        times = [f"{run['run_s']:.1f} s" if "run_s" in run else "failed" for run in runs]
        if times:
            counted = sum(peer["mode"] == mode for peer in peers)
            parts.append(f"{mode} {', '.join(times)} (counted {counted} of {len(peers)})")
    return "PyTorch peer, the faster of eager and torch.compile counts: " + "; ".join(parts) + "."
