"""Image decoding and preprocessing against OpenAI's reference transform, and odd image files."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import REFERENCE, reference_expected
from PIL import Image

from clipdesk.errors import ClipdeskError
from clipdesk.runtime.preprocess import (
    OPENAI_MEAN,
    OPENAI_STD,
    load_image,
    preprocess,
    preprocess_batch,
    to_rgb,
)

WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


def normalise(rgb: np.ndarray) -> np.ndarray:
    """ToTensor + Normalize written out plainly, as the reference computes them in float32."""
    x = rgb.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    mean = np.asarray(OPENAI_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(OPENAI_STD, dtype=np.float32)[:, None, None]
    return (x - mean) / std


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    channels = len(mode)
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def test_reference_images_match_the_reference_pixels(reference_inputs):
    expected = reference_expected("openai-vit-tiny")["pixels"]
    images = [load_image(REFERENCE / name) for name in reference_inputs["images"]]
    got = preprocess_batch(images, 64, OPENAI_MEAN, OPENAI_STD)
    assert got.shape == (3, 3, 64, 64) and got.dtype == np.float32
    # Same PIL bicubic and the same float32 operations: bit-identical in practice (max diff 0.0).
    assert np.abs(got - expected).max() <= 1e-5
    np.testing.assert_array_equal(preprocess(images[1], 64, OPENAI_MEAN, OPENAI_STD), got[1])


@pytest.mark.parametrize("size", [(100, 334), (334, 100)])
def test_long_side_is_truncated_and_crop_offset_rounds_half_to_even(size):
    # 64 * 334 / 100 = 213.76 -> 213 (not 214); the crop offset (213 - 64) / 2 = 74.5 -> 74 (not 75).
    image = noise(*size)
    resized = image.resize((64, 213) if size[0] < size[1] else (213, 64), Image.Resampling.BICUBIC)
    box = (0, 74, 64, 138) if size[0] < size[1] else (74, 0, 138, 64)
    expected = normalise(np.asarray(resized.crop(box)))
    np.testing.assert_array_equal(preprocess(image, 64, OPENAI_MEAN, OPENAI_STD), expected)


def test_image_already_at_resolution_is_only_normalised():
    image = noise(64, 64)
    np.testing.assert_array_equal(preprocess(image, 64, OPENAI_MEAN, OPENAI_STD), normalise(np.asarray(image)))


def test_batch_shapes_and_per_channel_statistics():
    assert preprocess_batch([], 32, OPENAI_MEAN, OPENAI_STD).shape == (0, 3, 32, 32)
    gray = Image.new("L", (50, 40), 128)
    batch = preprocess_batch([gray, noise(40, 50)], 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0], (128 / 255 - 0.5) / 0.5, rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        preprocess(gray, 32, (0.5,), (0.5,))


def test_rgba_transparent_areas_become_white(tmp_path):
    pixels = np.zeros((20, 40, 4), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0, 0)  # fully transparent red: must not show
    pixels[:, 20:] = (0, 0, 255, 255)
    pixels[:, 30:] = (0, 0, 0, 128)  # half transparent black: mid grey on white
    path = tmp_path / "alpha.png"
    Image.fromarray(pixels, "RGBA").save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (40, 20)
    assert image.getpixel((5, 5)) == WHITE
    assert image.getpixel((25, 5)) == BLUE
    assert all(abs(v - 127) <= 1 for v in image.getpixel((35, 5)))


def test_palette_with_transparency_becomes_white(tmp_path):
    image = Image.new("P", (10, 10), 0)
    image.putpalette([*RED, *BLUE] + [0] * 762)
    image.paste(1, (5, 0, 10, 10))
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)
    loaded = load_image(path)
    assert loaded.getpixel((0, 0)) == WHITE
    assert loaded.getpixel((9, 9)) == BLUE


def test_gray_modes_keep_their_brightness(tmp_path):
    assert to_rgb(Image.new("L", (4, 4), 100)).getpixel((0, 0)) == (100, 100, 100)
    # 16-bit values must be scaled down, not clipped to 255.
    sixteen = np.array([[0, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(sixteen).save(path)
    assert Image.open(path).mode.startswith("I")
    assert [load_image(path).getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), WHITE]
    as_int = Image.fromarray(sixteen.astype(np.int32))
    assert as_int.mode == "I" and to_rgb(as_int).getpixel((1, 0)) == (128, 128, 128)
    as_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert as_float.mode == "F" and to_rgb(as_float).getpixel((1, 0)) == (128, 128, 128)


def test_cmyk_is_converted_to_rgb(tmp_path):
    image = Image.new("CMYK", (8, 4), (0, 0, 0, 0))
    image.paste((0, 255, 255, 0), (4, 0, 8, 4))
    path = tmp_path / "cmyk.tif"
    image.save(path)
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == WHITE and loaded.getpixel((7, 3)) == RED


def test_exif_orientation_6_is_turned_upright(tmp_path):
    # Stored 60x30, left half red; orientation 6 means "turn 90 degrees clockwise to view".
    stored = Image.new("RGB", (60, 30), BLUE)
    stored.paste(RED, (0, 0, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.size == (30, 60)
    top, bottom = image.getpixel((15, 10)), image.getpixel((15, 50))
    assert top[0] > 200 and top[2] < 60  # red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below
    assert to_rgb(image) is image  # nothing left to do on an upright RGB image


def test_draft_decoding_scales_large_jpegs_down(tmp_path):
    path = tmp_path / "large.jpg"
    noise(800, 600).save(path)
    image = load_image(path, draft_size=64)
    assert image.size == (100, 75)  # 1/8 scale: the largest reduction keeping both sides >= 64
    assert load_image(path).size == (800, 600)
    # A pair bounds the longer side and the shorter one apart, whichever way the photo lies.
    assert load_image(path, draft_size=(200, 64)).size == (200, 150)
    assert load_image(path, draft_size=(300, 64)).size == (400, 300)
    noise(600, 800).save(path)
    assert load_image(path, draft_size=(200, 64)).size == (150, 200)
    assert load_image(path, draft_size=(200, 200)).size == (300, 400)


def test_non_image_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a photo\n")
    with pytest.raises(ClipdeskError, match="notes.jpg") as caught:
        load_image(path)
    assert "\n" not in str(caught.value)


def test_truncated_png_is_an_error(tmp_path):
    whole = tmp_path / "whole.png"
    noise(64, 64).save(whole)
    path = tmp_path / "truncated.png"
    path.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(ClipdeskError, match="truncated.png") as caught:
        load_image(path)
    assert "\n" not in str(caught.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ClipdeskError, match="file not found"):
        load_image(tmp_path / "gone.png")


def test_preprocess_does_not_import_torch():
    code = "import sys, clipdesk.runtime.preprocess; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
