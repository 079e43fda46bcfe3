"""Trained instant-style models on disk: kept beside the gallery they belong to.

A model is one file, ``<name>.jaxstyle-model`` (msgpack, via flax.serialization): the shared
convolutions, every style's normalization rows, and a JSON record (styles, training settings,
steps, loss history, time, which VGG19 weights trained it). Training keeps a second file beside it,
``<name>.jaxstyle-checkpoint``, with the optimizer's state too, so that ``--resume`` continues
exactly where a killed run stopped. Both are written whole or not at all (files.atomic_write), so
a kill never leaves a half-written model.

Why flax.serialization and not Orbax: a model is a few MB that must move as one file (export,
import, a gallery's folder); one atomic rename is the whole consistency story, with no
asynchronous writers, directories of shards or TensorStore to carry along.

The models of a gallery live in ``<gallery stem>-models/`` beside the gallery file, so
``--gallery`` / ``JAXSTYLE_GALLERY`` select them with the gallery.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle import files, images, paths
from jaxstyle.errors import ImageError, ModelError

MODEL_SUFFIX = ".jaxstyle-model"
CHECKPOINT_SUFFIX = ".jaxstyle-checkpoint"
MODEL_FORMAT = "jaxstyle-model"
MODEL_VERSION = 1
# A model file is read whole to be checked: its size is checked first. The network's params are
# 6.4 MB; the rest is its paintings (each one at most an upload's 50 MB).
MAX_MODEL_BYTES = 256 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A trained network: its params and its record.

    Attributes:
        name: the model's name (its file name without the suffix).
        styles: the names of the styles it holds, in row order of ``norms``.
        net: the shared convolutions' params (``{"params": …}``), numpy.
        norms: ``{layer: {"scale": (S, C), "shift": (S, C)}}``, numpy, one row per style.
        meta: the record: training settings, steps, loss history, seconds, weights source.
    """

    name: str
    styles: tuple[str, ...]
    net: dict
    norms: dict
    meta: dict
    style_images: dict[str, bytes]  # each style's painting as PNG (long side ≤ 512): the model is self-contained

    def style_image(self, style: str) -> Image.Image:
        """The painting the model learned ``style`` from."""
        return images.open_image(self.style_images[style], name=f"model {self.name}'s style {style}")

    def paintings(self) -> list[tuple[str, Image.Image]]:
        """Every style with the painting it was learned from, in row order: what a training of the
        same styles (``train --from``) learns."""
        return [(style, self.style_image(style)) for style in self.styles]

    def style_weights(self, styles: Sequence[str], blend: Sequence[float] | None = None) -> np.ndarray:
        """The (S,) row weights for painting in ``styles`` blended by ``blend`` (the settings'
        blend rule: normalized, None = equal)."""
        from jaxstyle.settings import blend_weights

        missing = [s for s in styles if s not in self.styles]
        if missing:
            raise ModelError(
                f"model {self.name} does not hold the style(s) {', '.join(missing)}; it holds {', '.join(self.styles)}"
            )
        weights = np.zeros(len(self.styles), np.float32)
        for style, weight in zip(styles, blend_weights(blend, len(styles)), strict=True):
            weights[self.styles.index(style)] += weight
        return weights


def models_dir(gallery_path: str | os.PathLike | None = None) -> Path:
    """Where the models of the gallery at ``gallery_path`` (default: the default gallery) live."""
    gallery = Path(gallery_path) if gallery_path is not None else paths.default_gallery_path()
    return gallery.parent / f"{gallery.stem}-models"


def check_name(name: str) -> str:
    """``name`` if it can name a model file (letters, digits, ``_ . -``, up to 64), else ModelError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ModelError(
            f"a model name is 1–64 letters, digits, '_', '.' or '-', starting with a letter or digit; got {name!r}"
        )
    return name


def check_new_name(name: str) -> str:
    """``name`` if a new model (trained or imported) may take it: a valid name that is not a
    built-in model's (those are every install's, and a file of the same name would hide one)."""
    from jaxstyle.instant.builtin import BUILTIN_MODELS

    if check_name(name) in BUILTIN_MODELS:
        raise ModelError(f"{name!r} is a built-in model's name; choose another name")
    return name


def model_path(name: str, gallery_path: str | os.PathLike | None = None) -> Path:
    return models_dir(gallery_path) / f"{check_name(name)}{MODEL_SUFFIX}"


def checkpoint_path(name: str, gallery_path: str | os.PathLike | None = None) -> Path:
    return models_dir(gallery_path) / f"{check_name(name)}{CHECKPOINT_SUFFIX}"


def read_checkpoint_meta(name: str, gallery_path: str | os.PathLike | None = None) -> dict:
    """The record of a model's training checkpoint (its ``step`` tells where ``--resume`` starts)."""
    path = checkpoint_path(name, gallery_path)
    if not path.is_file():
        raise ModelError(f"nothing to resume: no checkpoint at {path}")
    return read_record(path)


def read_record(path: str | os.PathLike) -> dict:
    """The record (``meta``) of a model or checkpoint file, without decoding its arrays: the
    record is read from the stream and every other value skipped, so asking a 21 MB checkpoint
    where it stopped costs milliseconds, not a decode of every array.

    Raises:
        ModelError: the file is missing, damaged, or not a jaxstyle model.
    """
    import msgpack

    where, meta = str(path), None
    try:
        with open(path, "rb") as stream:
            unpacker = msgpack.Unpacker(stream, raw=False)
            for _ in range(unpacker.read_map_header()):
                if unpacker.unpack() == "meta":
                    meta = json.loads(unpacker.unpack())
                    break
                unpacker.skip()
    except FileNotFoundError:
        raise ModelError(f"no model file at {where}") from None
    except Exception as error:  # msgpack raises a zoo of types for damaged bytes
        raise _damaged(where, error) from None
    return _checked_meta(meta, where)


def _damaged(where: str, error: Exception) -> ModelError:
    return ModelError(f"{where} is not a jaxstyle model, or it is damaged ({type(error).__name__})")


def _to_numpy(tree: Any) -> Any:
    import jax

    return jax.tree.map(lambda x: np.asarray(x), tree)


def encode(document: Mapping[str, Any]) -> bytes:
    """A document of arrays and a ``meta`` dict as msgpack bytes (meta stored as JSON text)."""
    from flax import serialization

    # The record first, so that read_record stops reading there.
    keys = ["meta", *(k for k in document if k != "meta")]
    state = {
        k: json.dumps(document[k]) if k == "meta" else document[k] if k == "style_images" else _to_numpy(document[k])
        for k in keys
    }
    return serialization.msgpack_serialize(state)


def decode(data: bytes, where: str) -> dict[str, Any]:
    """:func:`encode`'s document back; ModelError for anything that is not one."""
    from flax import serialization

    try:
        state = serialization.msgpack_restore(data)
        meta = json.loads(state["meta"])
    except Exception as error:  # msgpack raises a zoo of types for damaged bytes
        raise _damaged(where, error) from None
    return {**state, "meta": _checked_meta(meta, where)}


def _checked_meta(meta: Any, where: str) -> dict:
    """``meta`` if it is the record of a jaxstyle model this version reads, else ModelError."""
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise ModelError(f"{where} is not a jaxstyle model file")
    if meta.get("version") != MODEL_VERSION:
        version = meta.get("version")
        raise ModelError(f"{where} is a jaxstyle model of version {version}; this jaxstyle reads {MODEL_VERSION}")
    return meta


def _check_params(document: dict, where: str) -> None:
    """The params must have the network's shapes and one norm row per style."""
    import jax

    from jaxstyle.instant import network

    expected = jax.eval_shape(network.init_net)
    try:
        shapes = jax.tree.map(lambda x: tuple(np.shape(x)), document["net"])
        want = jax.tree.map(lambda x: tuple(x.shape), expected)
        if shapes != want:
            raise ModelError(f"{where}: the network's params do not have the shapes this jaxstyle builds")
        n_styles = len(document["meta"]["styles"])
        style_images = document["style_images"]
        if sorted(style_images) != sorted(document["meta"]["styles"]) or not all(
            isinstance(v, bytes) for v in style_images.values()
        ):
            raise ModelError(f"{where}: the style paintings do not match the styles")
        for layer, channels in network.norm_layer_channels().items():
            for what in ("scale", "shift"):
                if np.shape(document["norms"][layer][what]) != (n_styles, channels):
                    raise ModelError(f"{where}: normalization {layer}/{what} does not hold {n_styles} style(s)")
        if not all(np.isfinite(x).all() for x in jax.tree.leaves((document["net"], document["norms"]))):
            raise ModelError(f"{where}: the params hold NaN or infinite values")
    except (KeyError, TypeError) as error:
        raise ModelError(f"{where}: a jaxstyle model without its params ({error})") from None


def model_document(name: str, net: Any, norms: Any, meta: Mapping[str, Any], style_images: Mapping[str, bytes]) -> dict:
    meta = {**meta, "format": MODEL_FORMAT, "version": MODEL_VERSION, "name": name}
    return {"net": net, "norms": norms, "meta": meta, "style_images": dict(style_images)}


def save_model(path: Path, document: Mapping[str, Any]) -> Path:
    """Write a model (or checkpoint) document to ``path``, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write(path, encode(document))
    return path


def name_of(path: str | os.PathLike) -> str:
    """The name a model file in a gallery's models goes by: its file's, not its record's. A file
    renamed by hand (or copied in under another name) is the model of its new name, the one
    :func:`model_path` finds it by; its record keeps the name it was trained or imported under."""
    return Path(path).name.removesuffix(MODEL_SUFFIX)


def read_model(path: str | os.PathLike, *, name: str | None = None) -> Model:
    """The model in ``path``, called ``name`` (default: the name in its record); ModelError if it
    is missing, damaged or not a model."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no model file at {path}")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:  # before reading a byte of it
        limit = MAX_MODEL_BYTES // 2**20
        raise ModelError(f"{path.name} is {size / 2**20:,.0f} MB; a model file is at most {limit} MB")
    document = decode(path.read_bytes(), str(path))
    _check_params(document, str(path))
    meta = document["meta"]
    return Model(
        name or meta["name"], tuple(meta["styles"]), document["net"], document["norms"], meta, document["style_images"]
    )


def load_model(name: str, gallery_path: str | os.PathLike | None = None) -> Model:
    """The model called ``name`` of the gallery at ``gallery_path``."""
    path = model_path(name, gallery_path)
    if not path.is_file():
        known = list_records(gallery_path)
        hint = f"; the models here are {', '.join(known)}" if known else "; there are none yet"
        raise ModelError(f"no model called {name!r} in {models_dir(gallery_path)}{hint}")
    return read_model(path, name=name)


def _model_files(gallery_path: str | os.PathLike | None) -> list[Path]:
    folder = models_dir(gallery_path)
    return sorted(folder.glob(f"*{MODEL_SUFFIX}")) if folder.is_dir() else []


def scan_models(gallery_path: str | os.PathLike | None = None) -> tuple[list[Model], list[str]]:
    """Every readable model of the gallery, by name, and one line for each other file of its
    models folder: damaged, not a model, or named so that no model can be called by it."""
    found, problems = [], []
    for path in _model_files(gallery_path):
        try:
            name = check_name(name_of(path))
        except ModelError as error:
            problems.append(f"{path} is left out: {error}; rename the file")
            continue
        try:
            found.append(read_model(path, name=name))
        except ModelError as error:
            problems.append(str(error))
    return found, problems


def list_models(gallery_path: str | os.PathLike | None = None) -> list[Model]:
    """Every readable model of the gallery, by name (other files are left out: see scan_models)."""
    return scan_models(gallery_path)[0]


def list_records(gallery_path: str | os.PathLike | None = None) -> dict[str, dict]:
    """Every model's record (styles, training…) by name, without decoding its arrays
    (:func:`read_record`): what a chooser of models needs, in milliseconds where
    :func:`list_models` takes about 0.3 s a model. A file whose record is damaged is left out; one
    damaged after its record is listed, and refused when it is loaded."""
    found = {}
    for path in _model_files(gallery_path):
        if not _NAME.match(name_of(path)):
            continue
        try:
            found[name_of(path)] = read_record(path)
        except ModelError:
            continue
    return found


def delete_model(name: str, gallery_path: str | os.PathLike | None = None) -> None:
    """Delete a model and its checkpoint."""
    path = model_path(name, gallery_path)
    if not path.is_file() and not checkpoint_path(name, gallery_path).is_file():
        raise ModelError(f"no model called {name!r} in {models_dir(gallery_path)}")
    path.unlink(missing_ok=True)
    checkpoint_path(name, gallery_path).unlink(missing_ok=True)


def export_model(name: str, dest: str | os.PathLike, gallery_path: str | os.PathLike | None = None) -> Path:
    """Copy a model's file to ``dest`` (a file, or a folder to put ``<name>.jaxstyle-model`` in)."""
    model = load_model(name, gallery_path)  # refuses a damaged one
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / f"{model.name}{MODEL_SUFFIX}"
    files.atomic_write(dest, model_path(name, gallery_path).read_bytes())
    return dest


def import_model(
    source: str | os.PathLike, gallery_path: str | os.PathLike | None = None, *, name: str | None = None
) -> Model:
    """Check a model file (its params and each style's painting, decoded as an upload is) and copy
    it into the gallery's models, under its own name or ``name``; an existing model of that name is
    refused."""
    model = read_model(source)
    for style in model.styles:  # its paintings too, through the upload guard, before it is listed
        try:
            model.style_image(style)
        except ImageError as error:
            raise ModelError(f"{Path(source).name} is damaged: {error}") from None
    name = check_new_name(name or model.name)
    dest = model_path(name, gallery_path)
    if dest.exists():
        raise ModelError(f"a model called {name!r} exists already; import it under another name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_model(dest, model_document(name, model.net, model.norms, model.meta, model.style_images))
    return read_model(dest)
