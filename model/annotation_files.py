"""Reading dataset annotation files, shared by the evaluation loaders
(`model.evaluation.datasets`) and the training sources (`model.training.sources`).

- mask / palette PNGs: raw (H, W) integer values, palette indices kept (`read_label_map`);
- SBD `inst/<id>.mat`: GTinst.Segmentation, an instance label map, 0 background (`read_sbd_instances`);
- PASCAL VOC `SegmentationObject/<id>.png`: palette index = instance id, 0 background,
  255 void (`read_voc_instances`, `VOC_VOID`);
- id lists (`ImageSets/Segmentation/<split>.txt`, SBD `<split>.txt`): one id a line (`read_id_list`);
- instance ids of a label map with their pixel counts (`instance_areas`);
- files of a folder by stem (`files_by_stem`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}

#: PASCAL VOC's void / ignore index in SegmentationObject and SegmentationClass.
VOC_VOID = 255


def read_label_map(path: str | Path) -> np.ndarray:
    """A mask or palette PNG as its raw (H, W) integer values (palette indices kept)."""
    with Image.open(path) as img:
        arr = np.asarray(img)
    return arr if arr.ndim == 2 else arr[..., 0]


def read_sbd_instances(mat_path: str | Path) -> np.ndarray:
    """SBD inst/<id>.mat -> (H, W) instance label map (0 background)."""
    import scipy.io

    return np.asarray(scipy.io.loadmat(str(mat_path))["GTinst"][0, 0]["Segmentation"])


def read_voc_instances(png_path: str | Path) -> np.ndarray:
    """VOC SegmentationObject/<id>.png -> (H, W) instance ids (0 background, VOC_VOID void)."""
    return read_label_map(png_path)


def read_id_list(path: str | Path) -> list[str]:
    """A split file: ids separated by whitespace (one a line), in file order."""
    return Path(path).read_text().split()


def instance_areas(label_map: np.ndarray, void: int | None = None) -> list[tuple[int, int]]:
    """[(instance id, pixel count)] of every value > 0 other than `void`, by increasing id."""
    values, counts = np.unique(label_map, return_counts=True)
    return [(int(v), int(c)) for v, c in zip(values, counts) if v > 0 and (void is None or v != void)]


def files_by_stem(folder: str | Path, exts=IMAGE_EXTS) -> dict[str, Path]:
    """{stem: path} of the files in `folder` whose extension is in `exts` (case-insensitive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"missing folder {folder}")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in exts}
