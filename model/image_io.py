"""Reading images of any format into (H, W, 3) uint8 RGB arrays.

Handles grayscale, RGBA (composited on white), palette, 16-bit, CMYK and EXIF-rotated
images; refuses corrupt files and images over a pixel limit with an ImageError.
"""

from __future__ import annotations

import io
import os
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: Refuse images with more pixels than this (about 100 megapixels): decoding them would
#: take gigabytes and the model works at a 512-pixel short side anyway.
MAX_PIXELS = 100_000_000



def max_image_pixels() -> int:
    """The pixel limit of images, which also bounds every mask decoded from a client (read at
    call time, so tests can lower MAX_PIXELS)."""
    return MAX_PIXELS


ImageSource = Union[str, os.PathLike, bytes, np.ndarray, Image.Image]


def _to_rgb(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit (or 32-bit integer) grayscale: values above 255 mean a 16-bit range.
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and arr.max() > 255:
            arr = arr / 257.0
        arr8 = np.clip(arr, 0, 255).round().astype(np.uint8)
        return np.repeat(arr8[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Normalise an array image: (H, W), (H, W, 1|3|4), uint8/uint16/float -> (H, W, 3) uint8."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"the image is empty ({a.shape[1]}x{a.shape[0]})")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise ImageError(f"the image has {a.shape[0] * a.shape[1]} pixels, more than {MAX_PIXELS}")
    if a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif a.dtype.kind == "f":
        a = (np.clip(a, 0.0, 1.0) * 255.0).round().astype(np.uint8) if a.max(initial=0) <= 1.0 \
            else np.clip(a, 0, 255).round().astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(a)


def load_image(source: ImageSource) -> np.ndarray:
    """Decode a path, encoded bytes, PIL image or array into (H, W, 3) uint8 RGB."""
    if isinstance(source, np.ndarray):
        return array_to_rgb(source)
    try:
        if isinstance(source, Image.Image):
            img = source
        elif isinstance(source, (bytes, bytearray, memoryview)):
            img = Image.open(io.BytesIO(bytes(source)))
        else:
            path = os.fspath(source)
            if not os.path.isfile(path):
                raise ImageError(f"no image file at {path}")
            img = Image.open(path)
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageError(f"the image is {w}x{h} ({w * h} pixels), more than {MAX_PIXELS}")
        if w < 1 or h < 1:
            raise ImageError(f"the image is empty ({w}x{h})")
        img.load()
        return np.ascontiguousarray(_to_rgb(img))
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot decode the image: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"the image is corrupt or truncated: {exc}") from None
