"""VGG19 weights: the pretrained Keras file (download, verify, convert, cache) or a labeled fallback.

One module per job:

- :mod:`~jaxstyle.weights.keras`: the Keras ``.h5`` file (name, md5, URLs, size) and its reader;
- :mod:`~jaxstyle.weights.cache`: the download (progress as a callback), the cache folder and the
  converted ``.npz``;
- :mod:`~jaxstyle.weights.fallback`: the offline fallback, a VGG19 with smooth random filters;
- :mod:`~jaxstyle.weights.choose`: which weights a run uses (:func:`load_weights`), what it would
  pick right now (:func:`weights_status`), and the :class:`Weights` it returns.

Callers use the package: ``from jaxstyle import weights; weights.load_weights()``. Tests that
change a constant patch it in its module (``weights.keras.KERAS_MD5``), where the code reads it.
"""

from jaxstyle.errors import WeightsError
from jaxstyle.weights.cache import (
    DOWNLOAD_TIMEOUT_S,
    NPZ_FORMAT_VERSION,
    ProgressCallback,
    cached_h5_path,
    cached_npz_path,
    convert_to_npz,
    download_weights,
    weights_dir,
)
from jaxstyle.weights.choose import (
    SOURCE_FALLBACK,
    SOURCE_PRETRAINED,
    Weights,
    WeightsKind,
    WeightsStatus,
    load_weights,
    weights_status,
)
from jaxstyle.weights.fallback import (
    FALLBACK_VERSION,
    FIRST_LAYER_FILTERS,
    SMOOTH_BASIS,
    fallback_description,
    fallback_npz_path,
    natural_like_images,
    random_fallback_params,
    smooth_random_params,
)
from jaxstyle.weights.keras import (
    KERAS_FILE_NAME,
    KERAS_MD5,
    KERAS_SIZE_BYTES,
    KERAS_SIZE_MB,
    KERAS_URLS,
    Params,
    load_keras_h5,
    md5_of,
)

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "FALLBACK_VERSION",
    "FIRST_LAYER_FILTERS",
    "KERAS_FILE_NAME",
    "KERAS_MD5",
    "KERAS_SIZE_BYTES",
    "KERAS_SIZE_MB",
    "KERAS_URLS",
    "NPZ_FORMAT_VERSION",
    "SMOOTH_BASIS",
    "SOURCE_FALLBACK",
    "SOURCE_PRETRAINED",
    "Params",
    "ProgressCallback",
    "Weights",
    "WeightsError",
    "WeightsKind",
    "WeightsStatus",
    "cached_h5_path",
    "cached_npz_path",
    "convert_to_npz",
    "download_weights",
    "fallback_description",
    "fallback_npz_path",
    "load_keras_h5",
    "load_weights",
    "md5_of",
    "natural_like_images",
    "random_fallback_params",
    "smooth_random_params",
    "weights_dir",
    "weights_status",
]
