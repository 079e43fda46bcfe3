"""VGG19's layer names and sizes, without importing JAX (the gallery and CLI validate settings
with them and should start fast)."""

# (block, convs in the block, channels) of VGG19.
_BLOCKS: tuple[tuple[int, int, int], ...] = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))

LAYER_NAMES: tuple[str, ...] = tuple(f"conv{b}_{i}" for b, n, _ in _BLOCKS for i in range(1, n + 1))
LAYER_CHANNELS: dict[str, int] = {f"conv{b}_{i}": c for b, n, c in _BLOCKS for i in range(1, n + 1)}
# What a layer's input has: 3 for the first, the previous layer's channels otherwise.
LAYER_IN_CHANNELS: dict[str, int] = {
    name: (3 if k == 0 else LAYER_CHANNELS[LAYER_NAMES[k - 1]]) for k, name in enumerate(LAYER_NAMES)
}
POOLINGS = ("max", "average")
