"""images.py: every kind of file a stranger might hand us decodes to RGB or fails with ImageError."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxstyle import images
from jaxstyle.errors import ImageError


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> Image.Image:
    """A real photo, 96 px on the long side."""
    with Image.open(shared_data / "content" / "tubingen.jpg") as image:
        return images.fit_long_side(image.convert("RGB"), 96)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def mean_rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)


# --- every mode and container becomes RGB


def test_a_jpeg_file_path_opens_as_rgb(content_path: Path):
    image = images.open_image(content_path)
    assert image.mode == "RGB"
    assert image.size == (1024, 768)


def test_rgba_is_composited_on_white(photo):
    rgba = photo.convert("RGBA")
    alpha = np.zeros(photo.size[::-1], dtype=np.uint8)
    alpha[:, : photo.width // 2] = 255  # left half opaque, right half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    image = images.open_image(encode(rgba, "PNG"), name="rgba.png")
    pixels = np.asarray(image)
    assert image.mode == "RGB"
    assert (pixels[:, photo.width // 2 + 1 :] == 255).all()
    np.testing.assert_allclose(pixels[:, :10], np.asarray(photo)[:, :10], atol=1)


@pytest.mark.parametrize("mode", ["L", "LA", "P"])
def test_grayscale_and_palette_modes_become_rgb(photo, mode):
    converted = photo.convert(mode)
    image = images.open_image(encode(converted, "PNG"), name=f"{mode}.png")
    assert image.mode == "RGB"
    assert image.size == photo.size
    # Palette quantisation and gray conversion keep the overall brightness.
    assert abs(mean_rgb(image).mean() - mean_rgb(photo).mean()) < 8


def test_gray_image_has_equal_channels(photo):
    image = images.open_image(encode(photo.convert("L"), "PNG"), name="gray.png")
    pixels = np.asarray(image)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_palette_with_transparency_is_composited_on_white(photo):
    palette_image = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    first_index = palette_image.getpixel((0, 0))
    data = encode(palette_image, "PNG", transparency=first_index)
    assert Image.open(io.BytesIO(data)).info.get("transparency") is not None
    image = images.open_image(data, name="transparent.png")
    indices = np.asarray(palette_image)
    assert (np.asarray(image)[indices == first_index] == 255).all()
    assert (np.asarray(image)[indices != first_index] != 255).any()


def test_sixteen_bit_png_is_scaled_to_eight_bits(photo):
    gray16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    source = Image.fromarray(gray16)
    data = encode(source, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    image = images.open_image(data, name="deep.png")
    np.testing.assert_array_equal(np.asarray(image)[..., 0], np.asarray(photo.convert("L")))


@pytest.mark.parametrize(
    ("mode", "values"),
    [("I", lambda gray: gray.astype(np.int32)), ("F", lambda gray: gray.astype(np.float32) / 255)],
)
def test_integer_and_float_tiff_keep_their_brightness(photo, mode, values):
    gray = np.asarray(photo.convert("L"))
    source = Image.fromarray(values(gray))
    assert source.mode == mode
    image = images.open_image(encode(source, "TIFF"), name=f"{mode}.tif")
    np.testing.assert_allclose(np.asarray(image)[..., 0], gray, atol=1)


def test_cmyk_jpeg_becomes_rgb(photo):
    data = encode(photo.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    image = images.open_image(data, name="print.jpg")
    assert image.mode == "RGB"
    np.testing.assert_allclose(mean_rgb(image), mean_rgb(photo), atol=6)


def test_exif_orientation_is_applied(photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(photo, "JPEG", exif=exif.tobytes())
    image = images.open_image(data, name="phone.jpg")
    assert image.size == (photo.height, photo.width)
    # The photo's top-left corner ends up top-right.
    top_left = np.asarray(photo)[:8, :8].astype(float).mean(axis=(0, 1))
    top_right = np.asarray(image)[:8, -8:].astype(float).mean(axis=(0, 1))
    np.testing.assert_allclose(top_right, top_left, atol=12)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_its_first_frame(photo, fmt):
    red = Image.new("RGB", (40, 30), (255, 0, 0))
    blue = Image.new("RGB", (40, 30), (0, 0, 255))
    data = encode(red, fmt, save_all=True, append_images=[blue, photo.resize((40, 30))], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    image = images.open_image(data, name=f"anim.{fmt.lower()}")
    assert image.size == (40, 30)
    np.testing.assert_allclose(mean_rgb(image), [255, 0, 0], atol=6)


@pytest.mark.parametrize("suffix", images.IMAGE_SUFFIXES)
def test_every_accepted_suffix_is_a_format_open_image_reads(photo, tmp_path, suffix):
    path = tmp_path / f"photo{suffix}"
    photo.save(path)  # Pillow picks the format from the suffix
    image = images.open_image(path)
    assert image.mode == "RGB" and image.size == photo.size


def test_the_app_and_training_accept_the_same_image_files(tmp_path):
    from jaxstyle.instant.train import photo_files
    from ui.common import IMAGE_TYPES

    assert sorted(f".{kind}" for kind in IMAGE_TYPES) == sorted(images.IMAGE_SUFFIXES)
    for suffix in images.IMAGE_SUFFIXES:
        (tmp_path / f"photo{suffix.upper()}").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    assert sorted(path.suffix.lower() for path in photo_files(tmp_path)) == sorted(images.IMAGE_SUFFIXES)


def test_one_pixel_image_opens():
    image = images.open_image(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"), name="dot.png")
    assert image.size == (1, 1)
    assert image.getpixel((0, 0)) == (10, 20, 30)


def test_extreme_aspect_ratio_opens(photo):
    strip = photo.resize((4000, 20))
    image = images.open_image(encode(strip, "PNG"), name="strip.png")
    assert image.size == (images.MAX_SIZE_PX, 10)


def test_huge_legitimate_photo_is_downscaled_not_refused(photo):
    big = photo.resize((6000, 4000))
    image = images.open_image(encode(big, "JPEG", quality=70), name="big.jpg")
    assert image.mode == "RGB"
    assert image.size == (images.MAX_SIZE_PX, round(images.MAX_SIZE_PX * 4000 / 6000))


# --- bad input fails with ImageError naming the file


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageError, match="nope.jpg.*not found"):
        images.open_image(path)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.png.*empty"):
        images.open_image(path)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML"),
        (b'{"error": "no such image"}', "JSON"),
        (b"just some words\n", "text"),
        (bytes(range(256)) * 4, "not in an image format"),
    ],
)
def test_non_images_are_refused_with_a_hint(body, kind):
    with pytest.raises(ImageError, match=f"download.bin.*{kind}"):
        images.open_image(body, name="download.bin")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_refused(photo, fmt):
    data = encode(photo, fmt)
    with pytest.raises(ImageError, match="cut.*truncated or corrupt"):
        images.open_image(data[: len(data) // 2], name="cut")


def test_too_many_bytes_are_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.bin"
    with path.open("wb") as file:
        file.truncate(images.MAX_INPUT_BYTES + 1)  # sparse: no real disk used
    with pytest.raises(ImageError, match="huge.bin.*limit"):
        images.open_image(path)
    with pytest.raises(ImageError, match="limit"):
        images.open_image(b"\0" * (images.MAX_INPUT_BYTES + 1), name="upload")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [10_000, 100_000])  # over our limit; over twice PIL's own limit
def test_decompression_bomb_is_refused(side):
    with pytest.raises(ImageError, match="bomb.png.*(too many pixels|megapixels)"):
        images.open_image(png_claiming(side, side), name="bomb.png")


def test_real_huge_pixel_png_of_a_few_kilobytes_is_refused():
    # 9000 x 9000 black pixels compress to a few tens of kilobytes.
    data = encode(Image.new("L", (9000, 9000)), "PNG", optimize=True)
    assert len(data) < 200_000
    with pytest.raises(ImageError, match="megapixels"):
        images.open_image(data, name="black.png")


# --- file names, resizing, arrays, encodings


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        (".hidden.png", "hidden.png"),
        ("a\x00b\nc\x1b.png", "abc.png"),
        ('what?<>:"|*.png', "what_______.png"),
        ("", "image"),
        ("...", "image"),
        ("/", "image"),
        ("  spaced name.png  ", "spaced name.png"),
        ("Tübingen 2024.jpeg", "Tübingen 2024.jpeg"),
    ],
)
def test_safe_filename(name, expected):
    assert images.safe_filename(name) == expected


def test_safe_filename_shortens_but_keeps_the_extension():
    name = images.safe_filename("x" * 500 + ".png")
    assert len(name) == 120
    assert name.endswith(".png")


@pytest.mark.parametrize(("size", "target", "expected"), [((1024, 768), 64, (64, 48)), ((20, 4000), 100, (1, 100))])
def test_fit_long_side_keeps_aspect(size, target, expected):
    assert images.fit_long_side(Image.new("RGB", size), target).size == expected


def test_array_round_trip(photo):
    arr = images.to_array(photo)
    assert arr.dtype == np.float32
    assert arr.shape == (photo.height, photo.width, 3)
    assert arr.min() >= 0.0 and arr.max() <= 1.0
    assert images.from_array(arr).tobytes() == photo.tobytes()


def test_from_array_clips():
    image = images.from_array(np.array([[[-0.5, 0.5, 1.5]]]))
    assert image.getpixel((0, 0)) == (0, 128, 255)


def test_png_and_thumbnail_encodings(content_path: Path):
    photo = images.open_image(content_path)
    assert Image.open(io.BytesIO(images.png_bytes(photo))).tobytes() == photo.tobytes()
    thumb_data = images.thumbnail_bytes(photo)
    thumb = Image.open(io.BytesIO(thumb_data))
    assert thumb.format == "JPEG"
    assert thumb.size == (256, 192)
    assert len(thumb_data) < 40_000
    assert images.sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --- colour helpers


def test_ycbcr_round_trip_and_known_values(photo):
    rgb = images.to_array(photo)
    np.testing.assert_allclose(images.ycbcr_to_rgb(images.rgb_to_ycbcr(rgb)), rgb, atol=1e-5)
    ycbcr = images.rgb_to_ycbcr(np.array([[[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]))
    np.testing.assert_allclose(ycbcr[0, 0], [1.0, 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(ycbcr[0, 1], [0.299, 0.5 - 0.168736, 1.0], atol=1e-6)


def test_transfer_luminance_keeps_content_chroma_and_stylized_luma(photo, shared_data: Path):
    content = images.to_array(photo)
    with Image.open(shared_data / "styles" / "starry_night.jpg") as style:
        stylized = images.to_array(style.convert("RGB").resize(photo.size))
    out = images.transfer_luminance(stylized, content)
    out_ycbcr, content_ycbcr, stylized_ycbcr = (images.rgb_to_ycbcr(a) for a in (out, content, stylized))
    inside = ((out > 0.001) & (out < 0.999)).all(axis=-1)  # clipping to [0, 1] is allowed to move the rest
    assert inside.mean() > 0.8
    np.testing.assert_allclose(out_ycbcr[inside][:, 1:], content_ycbcr[inside][:, 1:], atol=1e-4)
    np.testing.assert_allclose(out_ycbcr[inside][:, 0], stylized_ycbcr[inside][:, 0], atol=1e-4)


def test_transfer_luminance_needs_equal_shapes():
    with pytest.raises(ImageError, match="shapes differ"):
        images.transfer_luminance(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_symmetric_sqrt_of_a_known_matrix_and_its_inverse():
    # [[2, 1], [1, 2]] is symmetric with eigenvalues 1 and 3, and squares to [[5, 4], [4, 5]].
    root = images.symmetric_sqrt(np.array([[5.0, 4.0], [4.0, 5.0]]))
    np.testing.assert_allclose(root, [[2.0, 1.0], [1.0, 2.0]], atol=1e-12)
    inverse = images.symmetric_sqrt(np.array([[5.0, 4.0], [4.0, 5.0]]), inverse=True, floor=1e-12)
    np.testing.assert_allclose(inverse, np.array([[2.0, -1.0], [-1.0, 2.0]]) / 3, atol=1e-12)


def test_symmetric_sqrt_squares_back_and_its_inverse_whitens():
    b = np.random.default_rng(3).normal(size=(3, 3))
    a = b @ b.T
    root = images.symmetric_sqrt(a)
    inverse = images.symmetric_sqrt(a, inverse=True, floor=1e-12)
    np.testing.assert_allclose(root, root.T, atol=1e-12)
    np.testing.assert_allclose(root @ root, a, atol=1e-10)
    np.testing.assert_allclose(inverse @ a @ inverse, np.eye(3), atol=1e-10)


def test_symmetric_sqrt_of_a_singular_matrix_stays_finite_and_refuses_an_unfloored_inverse():
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])  # eigenvalues 2 and 0 (eigh may give it slightly negative)
    root = images.symmetric_sqrt(singular)
    np.testing.assert_allclose(root @ root, singular, atol=1e-8)
    with pytest.raises(ValueError, match="positive eigenvalue floor"):
        images.symmetric_sqrt(singular, inverse=True)


def test_match_color_matches_mean_and_covariance(photo, shared_data: Path):
    with Image.open(shared_data / "styles" / "the_scream.jpg") as style:
        source = images.to_array(images.fit_long_side(style.convert("RGB"), 80))
    reference = images.to_array(photo)
    out = images.match_color(source, reference, clip=False)
    assert out.shape == source.shape
    pixels, ref_pixels = out.reshape(-1, 3).astype(np.float64), reference.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(pixels.mean(axis=0), ref_pixels.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(np.cov(pixels, rowvar=False), np.cov(ref_pixels, rowvar=False), atol=1e-4)
    # The source's colours really were different before.
    assert np.abs(source.reshape(-1, 3).mean(axis=0) - ref_pixels.mean(axis=0)).max() > 0.05
    clipped = images.match_color(source, reference)
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


def test_match_color_of_a_flat_image_stays_finite():
    flat = np.full((8, 8, 3), 0.3, dtype=np.float32)
    out = images.match_color(flat, np.random.default_rng(0).random((8, 8, 3)))
    assert np.isfinite(out).all()
