"""The benchmark's peer: the same style transfer in plain PyTorch, for side-by-side ratios.

Same network (VGG19 up to the deepest layer asked for, with *the same* params, converted HWIO →
OIHW), same preprocessing (RGB [0, 1] → Caffe BGR, 0–255, mean removed), same relative losses
(jaxstyle/losses.py), same Adam and the same [0, 1] clamp after every step. Written the way a
PyTorch user writes it: an ``nn.Module``, ``torch.optim.Adam``, ``loss.backward()``, channels_last;
eager, or with the loss compiled by ``torch.compile`` (the bench times both and counts the faster:
:mod:`jaxstyle.bench.peer_runs`).

PyTorch is an optional dependency (``pip install torch==2.13.0``, the CPU wheel); only the peer's
worker process (:func:`jaxstyle.bench.peer_runs.peer_worker`) imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from jaxstyle.layers import LAYER_NAMES
from jaxstyle.settings import TransferSettings

# Caffe's ImageNet mean, BGR, 0–255 (as vgg.CAFFE_MEAN_BGR).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_EPS = 1e-8  # as losses._EPS


class PeerVGG(nn.Module):
    """VGG19's convolutions up to the deepest of ``layers``; returns their ReLU outputs by name."""

    def __init__(self, params: dict, layers: Sequence[str], pooling: str = "max") -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.pooling = pooling
        last = max(LAYER_NAMES.index(name) for name in layers)
        self.names = LAYER_NAMES[: last + 1]
        self.convs = nn.ModuleList()
        for name in self.names:
            kernel = np.asarray(params["params"][name]["kernel"], np.float32)  # HWIO
            conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))  # → OIHW
                conv.bias.copy_(torch.from_numpy(np.array(params["params"][name]["bias"], np.float32)))
            conv.requires_grad_(False)
            self.convs.append(conv)
        self.register_buffer("mean", torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1))

    def forward(self, rgb01: torch.Tensor) -> dict[str, torch.Tensor]:
        x = rgb01.flip(1) * 255.0 - self.mean  # RGB [0, 1] → Caffe BGR
        out = {}
        for k, (name, conv) in enumerate(zip(self.names, self.convs, strict=True)):
            if k > 0 and name.endswith("_1"):
                x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
            x = F.relu(conv(x))
            if name in self.layers:
                out[name] = x
        return out


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean((features - target) ** 2) / (torch.mean(target**2) + _EPS)


def gram(features: torch.Tensor) -> torch.Tensor:
    flat = features.flatten(2)[0]  # (C, H·W)
    return flat @ flat.T / flat.shape[1]


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    return torch.mean((gram(features) - target_gram) ** 2) / (torch.mean(target_gram**2) + _EPS)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    across = image[..., :, 1:] - image[..., :, :-1]
    down = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(across**2) + torch.mean(down**2)


def _to_tensor(array01: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float in [0, 1] → (1, 3, H, W), channels_last."""
    tensor = torch.from_numpy(np.ascontiguousarray(array01, np.float32)).permute(2, 0, 1)[None]
    return tensor.contiguous(memory_format=torch.channels_last)


def stylize_adam(
    params: dict,
    content01: np.ndarray,
    style01: np.ndarray,
    settings: TransferSettings,
    iterations: int,
    *,
    threads: int | None = None,
    compile_backend: str | None = None,
) -> dict[str, Any]:
    """Gatys et al. with Adam from the content image, ``iterations`` steps; returns its record.

    Only what the benchmark compares is supported: Gram style loss, one style, single scale.

    Args:
        params: the vgg params pytree (numpy or JAX arrays), e.g. ``weights.load_weights().params``.
        content01: the content image (H, W, 3) in [0, 1], already at the working size.
        style01: the style image (h, w, 3) in [0, 1], already at its working size.
        settings: loss weights, layers, pooling and learning rate (as in jaxstyle).
        iterations: Adam steps.
        threads: torch intra-op threads (None: torch's default, one per core).
        compile_backend: None: eager; else the loss (forward and backward) is compiled by
            ``torch.compile`` with this backend (``"inductor"``: its default), before the clock
            starts, as jaxstyle's timed runs start with compiled code.

    Returns:
        ``losses`` (iterations, 4): total, content, style, tv *before* each step;
        ``final_loss``: the total after the last step; ``step_end_s``: wall time at the end of
        each step since the start (targets included, compilation not); ``targets_s``;
        ``compile_s`` (0 eager); ``image`` (H, W, 3).
    """
    if settings.pyramid_levels != 1 or settings.warmup_iterations != 0 or settings.decay_power != 0:
        raise ValueError("the peer runs the classic recipe only: pyramid_levels=1, warmup_iterations=0, decay_power=0")
    if threads:
        torch.set_num_threads(threads)
    layers = tuple(dict.fromkeys(settings.content_layers + settings.style_layers))
    model = PeerVGG(params, layers, settings.pooling).to(memory_format=torch.channels_last)
    layer_weights = torch.tensor(settings.style_layer_weights or (1.0,) * len(settings.style_layers))
    layer_weights = layer_weights / layer_weights.sum()
    content = _to_tensor(content01)

    started = time.perf_counter()
    with torch.no_grad():
        content_targets = {n: f for n, f in model(content).items() if n in settings.content_layers}
        style_targets = {n: gram(f) for n, f in model(_to_tensor(style01)).items() if n in settings.style_layers}
    targets_s = time.perf_counter() - started

    def loss_terms(image: torch.Tensor) -> torch.Tensor:
        feats = model(image)
        c = sum(content_loss(feats[n], content_targets[n]) for n in settings.content_layers)
        c = c / len(settings.content_layers)
        s = sum(
            w * style_loss(feats[n], style_targets[n])
            for w, n in zip(layer_weights, settings.style_layers, strict=True)
        )
        t = tv_loss(image)
        total = settings.content_weight * c + settings.style_weight * s + settings.tv_weight * t
        return torch.stack([total, c, s, t])

    step_terms = loss_terms
    compile_s = 0.0
    if compile_backend:
        step_terms = torch.compile(loss_terms, backend=compile_backend)
        compiling = time.perf_counter()
        for _ in range(2):  # the first call compiles the forward, its backward the backward
            step_terms(content.clone().requires_grad_(True))[0].backward()
        compile_s = time.perf_counter() - compiling
        started += compile_s  # the clock counts the targets and the steps, as in eager

    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=settings.learning_rate)
    history = np.zeros((iterations, 4), np.float32)
    step_end_s = np.zeros(iterations)
    for i in range(iterations):
        optimizer.zero_grad(set_to_none=True)
        terms = step_terms(image)
        terms[0].backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
        history[i] = terms.detach().numpy()
        step_end_s[i] = time.perf_counter() - started
    with torch.no_grad():
        final_loss = float(loss_terms(image)[0])
    return {
        "losses": history,
        "final_loss": final_loss,
        "step_end_s": step_end_s,
        "targets_s": targets_s,
        "compile_s": compile_s,
        "image": image.detach()[0].permute(1, 2, 0).numpy(),
    }
