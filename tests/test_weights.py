"""VGG19 weights: the Keras h5 loader, the npz cache, the download, the load order (the offline
fallback is test_weights_fallback.py).

No internet here, so the "pretrained" file is one the tests write with h5py in exactly Keras's
layout (random values, distinct per layer), and downloads come from a real HTTP server on
127.0.0.1. Tests that need the published md5 to match that file set ``weights.keras.KERAS_MD5`` (where
the code reads it) to its md5.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from jaxstyle import cli, vgg, weights
from jaxstyle.cli.common import EXIT_BAD_INPUT
from jaxstyle.errors import Cancelled, WeightsError
from tests.support import free_port, local_http_server, photo

# (block, convolutions) of VGG19, written out here rather than taken from the code under test.
BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
CONV_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])

# How each Keras generation names a layer's kernel and bias inside its group.
WEIGHT_NAMING = {
    "keras1": lambda layer: (f"{layer}_W_1:0", f"{layer}_b_1:0"),
    "keras2": lambda layer: (f"{layer}/kernel:0", f"{layer}/bias:0"),
}


def keras_layer_names() -> list[str]:
    """The notop file's layers in order: input, convolutions and pooling layers."""
    names = ["input_1"]
    for block, convs in BLOCKS:
        names += [f"block{block}_conv{i}" for i in range(1, convs + 1)] + [f"block{block}_pool"]
    return names


def conv_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random kernels (He-scaled so 16 layers stay finite) and biases, distinct per layer, by Keras name."""
    arrays, channels_in = {}, 3
    for block, convs in BLOCKS:
        for i in range(1, convs + 1):
            channels = CONV_CHANNELS[block]
            rng = np.random.default_rng(100 * block + i)
            kernel = rng.standard_normal((3, 3, channels_in, channels), dtype=np.float32) * np.sqrt(
                2 / (9 * channels_in)
            )
            bias = rng.standard_normal(channels, dtype=np.float32) * 0.1
            arrays[f"block{block}_conv{i}"] = (kernel.astype(np.float32), bias.astype(np.float32))
            channels_in = channels
    return arrays


def write_keras_h5(path: Path, arrays: dict, naming: str = "keras1") -> Path:
    """Write ``arrays`` as Keras 2's ``save_weights`` does: attributes index the layers and weights."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode("utf8") for name in keras_layer_names()]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in keras_layer_names():
            group = f.create_group(layer)
            if layer not in arrays:
                group.attrs["weight_names"] = []  # input and pooling layers have no weights
                continue
            names = WEIGHT_NAMING[naming](layer)
            group.attrs["weight_names"] = [name.encode("utf8") for name in names]
            for name, value in zip(names, arrays[layer], strict=True):
                group.create_dataset(name, data=value)
    return path


@pytest.fixture(scope="module")
def arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return conv_arrays()


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory, arrays) -> Path:
    return write_keras_h5(tmp_path_factory.mktemp("keras") / weights.KERAS_FILE_NAME, arrays)


@pytest.fixture(scope="module")
def keras_md5(keras_h5: Path) -> str:
    return hashlib.md5(keras_h5.read_bytes()).hexdigest()


@pytest.fixture
def published(monkeypatch, keras_h5, keras_md5):
    """Make the test file count as the published one (its md5 and size become KERAS_MD5, KERAS_SIZE_BYTES)."""
    monkeypatch.setattr(weights.keras, "KERAS_MD5", keras_md5)
    monkeypatch.setattr(weights.keras, "KERAS_SIZE_BYTES", keras_h5.stat().st_size)


def assert_same_params(got: dict, arrays: dict) -> None:
    assert sorted(got["params"]) == sorted(vgg.LAYER_NAMES)
    for block, convs in BLOCKS:
        for i in range(1, convs + 1):
            kernel, bias = arrays[f"block{block}_conv{i}"]
            np.testing.assert_array_equal(np.asarray(got["params"][f"conv{block}_{i}"]["kernel"]), kernel)
            np.testing.assert_array_equal(np.asarray(got["params"][f"conv{block}_{i}"]["bias"]), bias)


# --- the Keras h5 loader ---------------------------------------------------------------------


@pytest.mark.parametrize("naming", ["keras1", "keras2"])
def test_every_keras_layer_lands_in_its_place(naming, tmp_path, arrays, keras_h5):
    path = keras_h5 if naming == "keras1" else write_keras_h5(tmp_path / "keras2.h5", arrays, "keras2")
    params = weights.load_keras_h5(path)
    assert_same_params(params, arrays)
    assert all(leaf.dtype == np.float32 for layer in params["params"].values() for leaf in layer.values())


def reference_features(arrays: dict, rgb01: np.ndarray) -> dict[str, np.ndarray]:
    """VGG19 in plain numpy (float64): Caffe preprocessing, 3×3 SAME conv + bias + ReLU, 2×2 max pooling."""

    def conv3x3(x, kernel):
        height, width = x.shape[:2]
        padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        return sum(padded[i : i + height, j : j + width] @ kernel[i, j] for i in range(3) for j in range(3))

    def max_pool(x):
        height, width, channels = x.shape[0] // 2, x.shape[1] // 2, x.shape[2]
        return x[: 2 * height, : 2 * width].reshape(height, 2, width, 2, channels).max(axis=(1, 3))

    x = rgb01[0, :, :, ::-1].astype(np.float64) * 255.0 - CAFFE_MEAN_BGR
    out = {}
    for block, convs in BLOCKS:
        if block > 1:
            x = max_pool(x)
        for i in range(1, convs + 1):
            kernel, bias = arrays[f"block{block}_conv{i}"]
            x = np.maximum(conv3x3(x, kernel.astype(np.float64)) + bias, 0.0)
            out[f"conv{block}_{i}"] = x
    return out


def test_flax_forward_pass_on_loaded_weights_equals_a_numpy_reference(keras_h5, arrays, content_path):
    image = photo(content_path, (48, 36))  # odd sizes after pooling: 36 → 18 → 9 → 4 → 2
    got = vgg.features(weights.load_keras_h5(keras_h5), image, vgg.LAYER_NAMES)
    want = reference_features(arrays, image)
    for name in vgg.LAYER_NAMES:
        assert got[name].shape == (1, *want[name].shape), name
        scale = float(np.abs(want[name]).max())
        np.testing.assert_allclose(np.asarray(got[name][0]), want[name], rtol=1e-4, atol=1e-4 * scale, err_msg=name)


def edit_copy(source: Path, dest: Path, edit) -> Path:
    shutil.copyfile(source, dest)
    with h5py.File(dest, "a") as f:
        edit(f)
    return dest


def drop_layer(f: h5py.File) -> None:
    f.attrs["layer_names"] = [n for n in f.attrs["layer_names"] if n != b"block4_conv2"]
    del f["block4_conv2"]


def wrong_shape(f: h5py.File) -> None:
    del f["block2_conv1/block2_conv1_W_1:0"]
    f["block2_conv1"].create_dataset("block2_conv1_W_1:0", data=np.zeros((3, 3, 128, 128), np.float32))


def plain_hdf5(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# Each bad file, made from the good one on demand.
BAD_FILES = {
    "truncated to half": lambda good, tmp: write_bytes(tmp / "half.h5", good.read_bytes()[: good.stat().st_size // 2]),
    "last KiB missing": lambda good, tmp: write_bytes(tmp / "short.h5", good.read_bytes()[:-1024]),
    "not HDF5": lambda good, tmp: write_bytes(tmp / "photo.h5", b"\xff\xd8\xff\xe0 a JPEG, not HDF5"),
    "HDF5 but not Keras": lambda good, tmp: plain_hdf5(tmp / "plain.h5"),
    "missing layer": lambda good, tmp: edit_copy(good, tmp / "missing.h5", drop_layer),
    "wrong shape": lambda good, tmp: edit_copy(good, tmp / "shape.h5", wrong_shape),
    "does not exist": lambda good, tmp: tmp / "nowhere.h5",
}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("truncated to half", "truncated"),
        ("last KiB missing", "truncated"),
        ("not HDF5", "not an HDF5 file"),
        ("HDF5 but not Keras", "layer_names"),
        ("missing layer", "block4_conv2"),
        ("wrong shape", "conv2_1 kernel has shape (3, 3, 128, 128), VGG19 needs (3, 3, 64, 128)"),
        ("does not exist", "does not exist"),
    ],
)
def test_bad_h5_files_raise_a_clear_error(case, message, keras_h5, tmp_path):
    path = BAD_FILES[case](keras_h5, tmp_path)
    with pytest.raises(WeightsError, match=re.escape(message)) as raised:
        weights.load_keras_h5(path)
    assert str(path) in str(raised.value)


def test_md5_is_checked_only_when_asked(keras_h5, keras_md5):
    assert weights.md5_of(keras_h5) == keras_md5
    weights.load_keras_h5(keras_h5)  # not the published file, but well formed
    with pytest.raises(WeightsError, match=f"md5 {keras_md5}.*{weights.KERAS_MD5}"):
        weights.load_keras_h5(keras_h5, verify_md5=True)


# --- the npz cache ---------------------------------------------------------------------------


def test_npz_round_trip_keeps_every_array_and_the_source_md5(keras_h5, keras_md5, arrays):
    npz = weights.convert_to_npz(keras_h5)
    assert npz == weights.cached_npz_path()
    assert [p.name for p in npz.parent.iterdir()] == [npz.name]  # no temp file left
    loaded = weights.load_weights(npz)
    assert_same_params(loaded.params, arrays)
    assert (loaded.pretrained, loaded.source, loaded.checksum, loaded.path) == (True, "pretrained", keras_md5, npz)
    assert keras_md5[:8] in loaded.description and "not the published file" in loaded.description


def test_an_interrupted_npz_write_keeps_the_old_cache_and_leaves_no_temp_file(keras_h5, monkeypatch):
    npz = weights.convert_to_npz(keras_h5)
    before = npz.read_bytes()

    def half_then_interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", half_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        weights.convert_to_npz(keras_h5)
    assert npz.read_bytes() == before
    assert [p.name for p in npz.parent.iterdir()] == [npz.name]


def rewrite_npz(path: Path, **changes) -> None:
    with np.load(path) as data:
        contents = {key: data[key] for key in data.files}
    contents.update({key: np.asarray(value) for key, value in changes.items()})
    np.savez(path, **contents)


def test_stale_or_damaged_npz_is_detected(keras_h5, tmp_path):
    good = weights.convert_to_npz(keras_h5, tmp_path / "good.npz")
    damaged = write_bytes(tmp_path / "damaged.npz", good.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="damaged.npz"):
        weights.load_weights(damaged)
    rewrite_npz(good, format_version=0)
    with pytest.raises(WeightsError, match="format 0"):
        weights.load_weights(good)


def test_foreign_cached_npz_is_not_trusted(keras_h5):
    # Converted from a file other than the published one (its md5 is not KERAS_MD5).
    weights.convert_to_npz(keras_h5)
    assert weights.weights_status().problem is not None
    with pytest.raises(WeightsError, match="stale or foreign"):
        weights.load_weights()


def test_stale_cached_npz_is_rebuilt_from_the_cached_h5(published, keras_h5, arrays):
    npz = weights.convert_to_npz(keras_h5)
    rewrite_npz(npz, format_version=0)
    shutil.copyfile(keras_h5, weights.cached_h5_path())
    loaded = weights.load_weights()
    assert loaded.pretrained and loaded.path == npz
    assert_same_params(loaded.params, arrays)
    assert weights.weights_status().problem is None


# --- the download ----------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int | None, bytes]] = {}  # path: (the Content-Length it declares, the body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        declared_length, body = route
        self.send_response(200)
        if declared_length is not None:
            self.send_header("Content-Length", str(declared_length))
        self.end_headers()
        self.wfile.write(body)  # shorter than declared for /truncated.h5; HTTP/1.0 then closes

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(keras_h5):
    data = keras_h5.read_bytes()
    other = bytearray(data)
    other[len(other) // 2] ^= 0xFF  # same size, one bit pattern changed
    _Handler.routes = {
        "/weights.h5": (len(data), data),
        "/truncated.h5": (len(data), data[: len(data) // 3]),
        "/other.h5": (len(other), bytes(other)),
        "/no-length.h5": (None, data),  # read until the server closes
    }
    with local_http_server(_Handler) as url:  # it ignores clients that hang up (a cancelled download)
        yield url


@pytest.fixture
def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/weights.h5"


def test_download_verifies_and_reports_progress(server, keras_h5, keras_md5, tmp_path):
    calls = []
    path = weights.download_weights(
        progress=lambda done, total: calls.append((done, total)),
        urls=[f"{server}/weights.h5"],
        md5=keras_md5,
        dest_dir=tmp_path,
    )
    size = keras_h5.stat().st_size
    assert path == tmp_path / weights.KERAS_FILE_NAME and weights.md5_of(path) == keras_md5
    assert [p.name for p in tmp_path.iterdir()] == [weights.KERAS_FILE_NAME]
    assert len(calls) > 10 and calls[-1] == (size, size)
    assert all(total == size for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_download_of_unknown_length_reports_bytes_so_far(server, keras_h5, keras_md5, tmp_path):
    calls = []
    weights.download_weights(
        progress=lambda done, total: calls.append((done, total)),
        urls=[f"{server}/no-length.h5"],
        md5=keras_md5,
        dest_dir=tmp_path,
    )
    assert all(total is None for _, total in calls)
    assert calls[-1][0] >= keras_h5.stat().st_size  # pooch counts whole chunks


def test_a_progress_callback_can_cancel_the_download(server, keras_md5, tmp_path):
    def cancel_halfway(done, total):
        if done > total // 2:
            raise Cancelled("stopped by the user")

    with pytest.raises(Cancelled):
        weights.download_weights(
            progress=cancel_halfway, urls=[f"{server}/weights.h5"], md5=keras_md5, dest_dir=tmp_path
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("route", ["/truncated.h5", "/other.h5"])
def test_a_bad_download_leaves_no_file(route, server, keras_md5, tmp_path):
    with pytest.raises(WeightsError, match=route.replace(".", r"\.")):
        weights.download_weights(urls=[f"{server}{route}"], md5=keras_md5, dest_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_verified_file_is_not_downloaded_again(server, keras_h5, keras_md5, tmp_path):
    good = shutil.copyfile(keras_h5, tmp_path / weights.KERAS_FILE_NAME)
    # /other.h5 would fail the md5 check; it is never fetched because the file there is already right.
    assert weights.download_weights(urls=[f"{server}/other.h5"], md5=keras_md5, dest_dir=tmp_path) == good
    assert weights.md5_of(good) == keras_md5


def test_a_damaged_file_is_replaced_by_a_verified_download(server, keras_h5, keras_md5, tmp_path):
    damaged = tmp_path / weights.KERAS_FILE_NAME
    damaged.write_bytes(keras_h5.read_bytes()[:1000])
    weights.download_weights(urls=[f"{server}/weights.h5"], md5=keras_md5, dest_dir=tmp_path)
    assert weights.md5_of(damaged) == keras_md5


def test_download_tries_the_next_url(server, keras_md5, closed_port_url, tmp_path):
    urls = [closed_port_url, f"{server}/missing.h5", f"{server}/weights.h5"]
    path = weights.download_weights(urls=urls, md5=keras_md5, dest_dir=tmp_path)
    assert weights.md5_of(path) == keras_md5


def test_offline_download_lists_every_failed_url(server, keras_md5, closed_port_url, tmp_path):
    urls = [closed_port_url, f"{server}/missing.h5"]
    with pytest.raises(WeightsError) as raised:
        weights.download_weights(urls=urls, md5=keras_md5, dest_dir=tmp_path)
    message = str(raised.value)
    assert all(url in message for url in urls) and "404" in message
    assert "\n" not in message  # one line, as the CLI and the app show it
    assert list(tmp_path.iterdir()) == []


def test_the_published_urls_are_the_keras_ones():
    assert weights.KERAS_FILE_NAME == "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert weights.KERAS_MD5 == "253f8cb515780f3b799900260a226db6"
    assert weights.KERAS_SIZE_BYTES == 80_134_624
    assert all(url.startswith("https://") and url.endswith("/" + weights.KERAS_FILE_NAME) for url in weights.KERAS_URLS)


# --- the load order --------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["does not exist", "not HDF5", "truncated to half", "missing layer"])
def test_a_bad_explicit_path_is_an_error_not_a_fallback(case, keras_h5, tmp_path, monkeypatch):
    path = BAD_FILES[case](keras_h5, tmp_path)
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        weights.load_weights(path, allow_fallback=True)
    monkeypatch.setenv("JAXSTYLE_WEIGHTS", str(path))
    with pytest.raises(WeightsError, match=re.escape(str(path))):
        weights.load_weights(allow_fallback=True)


def test_explicit_path_wins_over_env_which_wins_over_the_cache(published, keras_h5, arrays, tmp_path, monkeypatch):
    other = write_keras_h5(tmp_path / "other.h5", {k: (v[0] * 2, v[1]) for k, v in arrays.items()})
    weights.cached_h5_path().parent.mkdir(parents=True)
    shutil.copyfile(keras_h5, weights.cached_h5_path())
    monkeypatch.setenv("JAXSTYLE_WEIGHTS", str(other))
    assert weights.weights_status().kind == "env"
    from_env = weights.load_weights()
    assert from_env.path == other and str(other) in from_env.description
    np.testing.assert_array_equal(
        np.asarray(from_env.params["params"]["conv1_1"]["kernel"]), arrays["block1_conv1"][0] * 2
    )
    assert weights.weights_status(keras_h5).kind == "explicit"
    assert weights.load_weights(keras_h5).path == keras_h5
    monkeypatch.delenv("JAXSTYLE_WEIGHTS")
    assert weights.weights_status().kind == "cached"
    assert weights.load_weights().path == weights.cached_npz_path()


def test_cached_h5_is_verified_converted_once_then_read_from_npz(published, keras_h5, keras_md5, arrays):
    weights.cached_h5_path().parent.mkdir(parents=True)
    shutil.copyfile(keras_h5, weights.cached_h5_path())
    first = weights.load_weights(allow_fallback=False)
    npz = weights.cached_npz_path()
    assert first.path == npz and npz.is_file() and first.checksum == keras_md5 and first.pretrained
    assert "not the published" not in first.description
    weights.cached_h5_path().unlink()  # the npz alone now suffices
    second = weights.load_weights(allow_fallback=False)
    assert second.path == npz
    assert_same_params(second.params, arrays)


def test_a_corrupt_cached_h5_is_an_error_not_a_fallback(published, keras_h5):
    weights.cached_h5_path().parent.mkdir(parents=True)
    weights.cached_h5_path().write_bytes(keras_h5.read_bytes()[:1_000_000])
    assert "incomplete" in weights.weights_status().problem
    with pytest.raises(WeightsError, match="python -m jaxstyle weights"):
        weights.load_weights(allow_fallback=True)


def test_status_reports_a_missing_explicit_file_without_raising(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXSTYLE_WEIGHTS", str(tmp_path / "gone.h5"))
    status = weights.weights_status()
    assert status.kind == "env" and "gone.h5, which does not exist" in status.problem


def test_nothing_on_disk_means_fallback_or_a_clear_error():
    status = weights.weights_status()
    assert status.kind == "fallback" and not status.pretrained and "python -m jaxstyle weights" in status.description
    with pytest.raises(WeightsError, match="python -m jaxstyle weights"):
        weights.load_weights(allow_fallback=False)


def test_load_weights_downloads_when_allowed(published, server, monkeypatch, closed_port_url, arrays):
    monkeypatch.setattr(weights.keras, "KERAS_URLS", (closed_port_url, f"{server}/weights.h5"))
    calls = []
    loaded = weights.load_weights(allow_download=True, allow_fallback=False, progress=lambda *a: calls.append(a))
    assert loaded.pretrained and loaded.path == weights.cached_npz_path() and calls
    assert weights.cached_h5_path().is_file()
    assert_same_params(loaded.params, arrays)


# --- python -m jaxstyle weights --------------------------------------------------------------


def test_weights_command_downloads_with_a_progress_bar(published, server, monkeypatch, capsys):
    monkeypatch.setattr(weights.keras, "KERAS_URLS", (f"{server}/weights.h5",))
    assert cli.main(["weights"]) == 0
    printed = capsys.readouterr()
    text = printed.out
    assert "downloading" in text and "100%" in text and "ready: VGG19 ImageNet weights" in text
    assert printed.err == ""
    assert weights.weights_status().kind == "cached"


def test_weights_command_offline_is_one_error_line_and_exit_2(monkeypatch, server, closed_port_url, capsys):
    monkeypatch.setattr(weights.keras, "KERAS_URLS", (closed_port_url, f"{server}/missing.h5"))
    assert cli.main(["weights"]) == EXIT_BAD_INPUT == 2
    printed = capsys.readouterr()
    (line,) = printed.err.splitlines()  # both failed URLs on the one line
    assert line.startswith("error: could not download") and closed_port_url in line and "missing.h5" in line
    assert "falls back to random VGG19 weights (not the pretrained model)" in printed.out
    assert "Traceback" not in printed.out + printed.err


def test_weights_command_status_only_does_not_download(monkeypatch, closed_port_url, capsys):
    monkeypatch.setattr(weights.keras, "KERAS_URLS", (closed_port_url,))
    assert cli.main(["weights", "--no-download"]) == 0
    text = capsys.readouterr().out
    assert "offline fallback" in text and "downloading" not in text
