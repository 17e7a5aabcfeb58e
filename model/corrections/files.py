"""Image and mask files of the store: content-addressed, written atomically.

Every file is named by the sha256 of its bytes (`images/ab/abcd....png`), so writing the
same content twice is a no-op and two records may share a file. A write goes to a
temporary file in the target folder, is fsynced, then `os.replace`d into place and the
folder fsynced: a crash leaves either the old state or the complete new file, never a
partial one. Temporary files a crash leaves behind are swept when the store opens.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

TMP_PREFIX = ".tmp-"
#: Temporary files older than this are leftovers of a crashed writer.
STALE_TMP_SECONDS = 3600

#: PIL format name -> file suffix for images we keep as the bytes we were given.
_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


def atomic_write(path: Path, data: bytes) -> None:
    """Write data to path so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}-{path.name}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry lives in the folder's own data."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def encode_mask_png(mask: np.ndarray) -> bytes:
    """(H, W) bool -> 1-bit PNG bytes (lossless, small)."""
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).convert("1").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def decode_mask_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L")) > 0


def encode_image_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def image_suffix(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _SUFFIX.get(img.format or "", ".img")
    except Exception:  # noqa: BLE001 - only a name is at stake; the bytes were validated before
        return ".img"


class FileStore:
    """Content-addressed files under one root folder (`<root>/images`, `<root>/masks`)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, kind: str, data: bytes, suffix: str) -> tuple[str, str]:
        """Store bytes under kind ("images" or "masks"); returns (sha256, path relative to root)."""
        sha = hashlib.sha256(data).hexdigest()
        rel = f"{kind}/{sha[:2]}/{sha}{suffix}"
        path = self.root / rel
        if not path.is_file() or path.stat().st_size != len(data):
            atomic_write(path, data)
        return sha, rel

    def ensure(self, rel: str, data: bytes) -> None:
        """Write data at rel again if it is missing (a clean-up removed it since `put`)."""
        path = self.root / rel
        if not path.is_file() or path.stat().st_size != len(data):
            atomic_write(path, data)

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    def sweep_stale_tmp(self, older_than: float = STALE_TMP_SECONDS) -> int:
        """Delete temporary files crashed writers left; returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        for tmp in self.root.rglob(f"{TMP_PREFIX}*"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except OSError:
                pass
        return removed
