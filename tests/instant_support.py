"""What the instant-model tests share (test_instant, test_instant_models, conftest's ``trained``):
the tiny training they all use and a pytree comparison. Apart from tests/support.py because it
imports JAX, which most test modules never need."""

from __future__ import annotations

import jax
import numpy as np

from jaxstyle.instant import train

# The last step's params (no moving average), as models were before ema_decay.
SMALL = train.TrainSettings(size_px=32, steps=4, batch=1, checkpoint_every=2, ema_decay=0.0)


def leaves_equal(a, b) -> bool:
    """Two pytrees of the same structure whose leaves are exactly equal."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return jax.tree.structure(a) == jax.tree.structure(b) and all(np.array_equal(x, y) for x, y in pairs)
