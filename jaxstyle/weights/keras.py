"""The Keras VGG19 weight file: what it is (name, md5, URLs, size) and how to read it.

The pretrained weights are Keras's ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``, the
original Caffe-trained VGG19 (Simonyan & Zisserman) that Gatys et al. used, with kernels already
HWIO. :func:`load_keras_h5` reads it into the vgg params pytree, checking every shape.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from jaxstyle import vgg
from jaxstyle.errors import WeightsError

KERAS_FILE_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_MD5 = "253f8cb515780f3b799900260a226db6"
# The URLs keras.applications.vgg19 itself uses, newest first.
KERAS_URLS: tuple[str, ...] = (
    f"https://storage.googleapis.com/tensorflow/keras-applications/vgg19/{KERAS_FILE_NAME}",
    f"https://github.com/fchollet/deep-learning-models/releases/download/v0.1/{KERAS_FILE_NAME}",
)
KERAS_SIZE_BYTES = 80_134_624
KERAS_SIZE_MB = 80

Params = dict[str, Any]


def _keras_layer_name(name: str) -> str:
    """``conv3_2`` → ``block3_conv2``."""
    block, index = name.removeprefix("conv").split("_")
    return f"block{block}_conv{index}"


def _text(value: Any) -> str:
    # h5py gives attributes written by Keras as bytes (np.bytes_); newer writers use str.
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def md5_of(path: str | os.PathLike) -> str:
    """The md5 hex digest of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def check_shape(source: str, name: str, what: str, array: np.ndarray) -> np.ndarray:
    """``array`` itself, once it has the shape VGG19's layer ``name`` needs for ``what`` (kernel or
    bias) and holds only finite values; else a :class:`WeightsError` naming ``source``."""
    expected = vgg.param_shapes()[name][what]
    if tuple(array.shape) != expected:
        raise WeightsError(f"{source}: {name} {what} has shape {tuple(array.shape)}, VGG19 needs {expected}")
    if not np.isfinite(array).all():
        raise WeightsError(f"{source}: {name} {what} holds NaN or infinite values")
    return array


def load_keras_h5(path: str | os.PathLike, *, verify_md5: bool = False) -> Params:
    """Read VGG19's 16 convolutions from a Keras weight file into the vgg params pytree.

    Follows the file's own index rather than guessing dataset names: the root attribute
    ``layer_names`` lists the layers (pooling layers too, with no weights) and each layer group's
    ``weight_names`` lists its kernel then its bias, named ``block1_conv1_W_1:0`` by Keras 1 and
    ``block1_conv1/kernel:0`` by Keras 2. Layers other than ``block*_conv*`` (the classifier of
    the full file) are ignored.

    Args:
        path: the ``.h5`` file.
        verify_md5: also require the md5 of the published notop file (:data:`KERAS_MD5`).

    Returns:
        ``{"params": {"conv1_1": {"kernel": (3, 3, 3, 64), "bias": (64,)}, …}}`` as numpy float32.

    Raises:
        WeightsError: the file is missing, not HDF5, truncated, not a Keras weight file, lacks a
            layer, has a wrong shape, or (with ``verify_md5``) has another md5.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"VGG19 weight file {path} does not exist")
    if verify_md5:
        _require_md5(path, KERAS_MD5)
    if not h5py.is_hdf5(path):
        raise WeightsError(f"{path} is not an HDF5 file, so not a Keras weight file ({KERAS_FILE_NAME})")
    params: dict[str, dict[str, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            root: h5py.Group = f
            # A whole saved model (model.save) keeps its weights one level down.
            if "layer_names" not in root.attrs and "model_weights" in root:
                root = root["model_weights"]
            if "layer_names" not in root.attrs:
                raise WeightsError(
                    f"{path} is HDF5 but not a Keras (2.x) weight file: it has no 'layer_names' attribute"
                )
            layer_names = {_text(n) for n in root.attrs["layer_names"]}
            missing = [_keras_layer_name(n) for n in vgg.LAYER_NAMES if _keras_layer_name(n) not in layer_names]
            if missing:
                raise WeightsError(f"{path} lacks VGG19 layer(s) {', '.join(missing)}: not a VGG19 weight file?")
            for name in vgg.LAYER_NAMES:
                group = root[_keras_layer_name(name)]
                weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
                if len(weight_names) != 2:
                    raise WeightsError(
                        f"{path}: layer {group.name.lstrip('/')} lists {len(weight_names)} weights "
                        f"({weight_names}), a convolution has 2 (kernel, bias)"
                    )
                kernel, bias = (np.asarray(group[w], dtype=np.float32) for w in weight_names)
                params[name] = {
                    "kernel": check_shape(str(path), name, "kernel", kernel),
                    "bias": check_shape(str(path), name, "bias", bias),
                }
    except (OSError, KeyError, ValueError, TypeError) as error:
        # h5py reports truncation and damaged blocks as OSError, absent datasets as KeyError.
        raise WeightsError(f"cannot read {path} as a Keras weight file (truncated or damaged?): {error}") from error
    return {"params": params}


def _require_md5(path: Path, expected: str) -> str:
    got = md5_of(path)
    if got != expected:
        raise WeightsError(
            f"{path} has md5 {got}, but {KERAS_FILE_NAME} has md5 {expected}: the file is incomplete or a "
            f"different file. Delete it and run `python -m jaxstyle weights` to download it again."
        )
    return got
