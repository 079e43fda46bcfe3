"""Every benchmark worker, by the ``kind`` its spec names: :func:`jaxstyle.bench.process.spawn`
runs one in a fresh process (``python -m jaxstyle.bench --worker SPEC``). None of the modules here
imports JAX or PyTorch when imported: each worker imports what it measures, so the peer's process
holds no JAX and jaxstyle's no PyTorch."""

from __future__ import annotations

import json
from collections.abc import Callable

from jaxstyle.bench import builtin_peer, builtin_workers, evaluation, flicker, instant, peer_runs, speed, video
from jaxstyle.bench.process import RESULT_PREFIX

WORKERS: dict[str, Callable[[dict], dict]] = {
    "prepare": peer_runs.prepare_worker,
    "peer": peer_runs.peer_worker,
    "jax": speed.jax_worker,
    "eval_jax": evaluation.jax_worker,
    "instant_infer": instant.infer_worker,
    "instant_train": instant.train_worker,
    "instant_quality": instant.quality_worker,
    "builtin_infer": builtin_workers.infer_worker,
    "builtin_networks": builtin_workers.networks_worker,
    "builtin_sheet": builtin_workers.sheet_worker,
    "builtin_peer": builtin_peer.peer_worker,
    "builtin_peer_sheet": builtin_peer.peer_sheet_worker,
    "video_camera": video.camera_worker,
    "video_file": video.file_worker,
    "video_strip": video.strip_worker,
    "video_peer_file": video.peer_file_worker,
    "video_flicker": flicker.flicker_worker,
}


def run_worker(spec_json: str) -> int:
    """Run the worker ``spec_json`` names and print its result, as :func:`process.spawn` reads it."""
    spec = json.loads(spec_json)
    print(RESULT_PREFIX + json.dumps(WORKERS[spec["kind"]](spec)), flush=True)
    return 0
