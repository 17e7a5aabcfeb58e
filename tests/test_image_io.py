import io

import numpy as np
import pytest
from PIL import Image

from model import image_io
from model.errors import ImageError
from model.image_io import load_image


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_grayscale_rgba_palette_and_16bit():
    gray = Image.fromarray(np.full((4, 5), 100, np.uint8), mode="L")
    assert load_image(_png_bytes(gray)).shape == (4, 5, 3)
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent -> white
    out = load_image(_png_bytes(Image.fromarray(rgba, mode="RGBA")))
    assert (out == 255).all()
    pal = Image.fromarray(np.full((4, 5), 3, np.uint8), mode="L").convert("P")
    assert load_image(_png_bytes(pal)).shape == (4, 5, 3)
    sixteen = Image.fromarray(np.full((4, 5), 65535, np.uint16))
    out16 = load_image(_png_bytes(sixteen))
    assert out16.dtype == np.uint8 and (out16 == 255).all()


def test_exif_rotation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif)
    assert load_image(path).shape == (20, 10, 3)


def test_arrays_of_many_kinds():
    assert load_image(np.zeros((3, 4), np.uint16)).shape == (3, 4, 3)
    assert load_image(np.ones((3, 4, 1), np.float32)).max() == 255
    assert load_image(np.zeros((3, 4, 4), np.uint8)).shape == (3, 4, 3)
    with pytest.raises(ImageError):
        load_image(np.zeros((3, 4, 2), np.uint8))


def test_corrupt_and_truncated_images(tmp_path):
    with pytest.raises(ImageError):
        load_image(b"not an image at all")
    data = _png_bytes(Image.fromarray(np.zeros((50, 50, 3), np.uint8)))
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 2])
    with pytest.raises(ImageError, match="no image file"):
        load_image(tmp_path / "missing.png")


def test_huge_image_is_refused(monkeypatch):
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100)
    with pytest.raises(ImageError, match="more than"):
        load_image(_png_bytes(Image.fromarray(np.zeros((20, 20, 3), np.uint8))))
