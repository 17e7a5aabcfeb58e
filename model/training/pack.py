"""A packed training set: every training object of a config's sources in one small file.

`fcanet pack --config C --out P.npz` reads the sources that config C names (any source
type), leaves out its held-out images (the same split training would take), and writes
one uncompressed .npz that the `packed` source type reads back. It exists so that a
training run can travel to a machine without the datasets (the GPU machine takes at
most 64 MiB with the code), at the cost of one lossy JPEG encoding:

- each image once, resized so its short side is at most `short_side` (the training
  scale, `resize_short_side`; never enlarged, so augmentation's zoom sees the same pixels
  up to resampling), encoded as WebP (the default: about 40% smaller than JPEG at the same
  setting, measured on these photos) or JPEG at `quality`;
- its objects' masks, at that size, grouped into label layers: a mask goes into the first
  layer of its image where it overlaps no other mask (up to 255 per layer), so disjoint
  parts (one annotator's BSDS segments, clothing parts) share one PNG and overlapping
  objects (a person and their coat) take separate ones.

File layout (arrays of the .npz):
  blob     uint8 (N,)        all encoded JPEG and PNG bytes, one after another
  images   int64 (I, 3)      part, blob offset, byte length of each image's WebP/JPEG
  layers   int64 (L, 3)      image, blob offset, byte length of each label-layer PNG
  objects  int64 (O, 3)      layer, label value, part of each object
  index    uint8 (JSON)      {"format", "image_ids": [...], "parts": [{"name", "type",
                             "weight", "images", "objects"}], "short_side", "encoding", "quality",
                             "config", "holdout", "sources_digest"}
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .config import TrainConfig

PACK_FORMAT = 1
#: What the GPU machine's 64 MiB working tree leaves for data beside the code and the bundle.
DEFAULT_MAX_MIB = 45.0
MIB = 1 << 20
#: Bytes an .npz of the five arrays adds to their data (zip and .npy headers: about 1.5 KiB).
NPZ_OVERHEAD = 8 << 10
#: Image encodings: OpenCV extension and quality flag.
ENCODINGS = {"webp": (".webp", cv2.IMWRITE_WEBP_QUALITY), "jpg": (".jpg", cv2.IMWRITE_JPEG_QUALITY)}


def sources_digest(cfg: TrainConfig) -> str:
    """16 hex digits naming the config's sources and held-out split: a pack made from other
    sources (or another split) than a config names is refused when training on it."""
    key = {"sources": cfg.sources, "holdout_source": cfg.holdout_source,
           "holdout_fraction": cfg.holdout_fraction,
           "holdout_seed": cfg.seed if cfg.holdout_seed is None else cfg.holdout_seed}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PackSummary:
    path: str
    bytes: int
    images: int
    objects: int
    layers: int
    seconds: float
    parts: list[dict[str, Any]]
    #: The image quality written (lower than asked where the size limit made it so).
    quality: int = 0

    @property
    def mib(self) -> float:
        return self.bytes / MIB


def _resize_to(image: np.ndarray, short_side: int | None) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    if not short_side or min(h, w) <= short_side:
        return image, 1.0
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _encode(ext: str, array: np.ndarray, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, array, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {ext} image of shape {array.shape}")
    return buf.tobytes()


def assign_layers(masks: list[np.ndarray], shape: tuple[int, int]) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """(label layers (H, W) uint8, (layer, label) of each mask): each mask goes into the first
    layer where it overlaps no mask placed before and fewer than 255 are; mask k is then
    `layers[layer] == label`, exactly."""
    planes: list[np.ndarray] = []
    counts: list[int] = []
    placed: list[tuple[int, int]] = []
    for mask in masks:
        slot = next((k for k, plane in enumerate(planes) if counts[k] < 255 and not np.any(plane[mask])), None)
        if slot is None:
            planes.append(np.zeros(shape, dtype=np.uint8))
            counts.append(0)
            slot = len(planes) - 1
        counts[slot] += 1
        planes[slot][mask] = counts[slot]
        placed.append((slot, counts[slot]))
    return planes, placed


def _group_by_image(source) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i in range(len(source)):
        groups.setdefault(source.image_id(i), []).append(i)
    return groups


def pack_config(cfg: TrainConfig, out: str | Path, short_side: int | None = None, quality: int = 75,
                encoding: str = "webp", max_mib: float | None = DEFAULT_MAX_MIB, config_name: str = "",
                min_quality: int | None = None, progress: Callable[[str], None] | None = None) -> PackSummary:
    """Pack the training objects of `cfg`'s sources (held-out images left out) into `out`.

    short_side defaults to cfg.resize_short_side (else cfg.crop_size). When the file would exceed
    max_mib: with `min_quality`, the images are encoded again at lower qualities (steps of 5, from
    their packed pixels, not down past min_quality) until it fits; otherwise, or when even
    min_quality is too large, ValueError, and nothing is written. Masks are always lossless.
    """
    from .run import training_sources

    for name, q in (("quality", quality), ("min_quality", min_quality)):
        if q is not None and not 1 <= q <= 100:
            raise ValueError(f"image {name} must lie in 1..100, got {q}")
    if encoding not in ENCODINGS:
        raise ValueError(f"image encoding must be one of {sorted(ENCODINGS)}, got {encoding!r}")
    ext, quality_flag = ENCODINGS[encoding]
    short_side = short_side or cfg.resize_short_side or cfg.crop_size
    started = time.time()
    sources, weights, val_view = training_sources(cfg)
    image_bytes: list[bytes] = []
    layer_bytes: list[bytes] = []
    image_parts, layer_images, objects, image_ids, parts = [], [], [], [], []
    for part, (source, weight, spec) in enumerate(zip(sources, weights, cfg.sources)):
        groups = _group_by_image(source)
        part_objects = 0
        for n, (image_id, members) in enumerate(groups.items()):
            samples = [source[i] for i in members]
            image, _ = _resize_to(samples[0].load_image(), short_side)
            h, w = image.shape[:2]
            image_index = len(image_bytes)
            image_bytes.append(_encode(ext, np.ascontiguousarray(image[:, :, ::-1]), [quality_flag, quality]))
            image_parts.append(part)
            image_ids.append(image_id)
            masks = []
            for sample in samples:
                mask = np.asarray(sample.load_mask(), dtype=bool)
                if mask.shape != (h, w):
                    mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
                masks.append(mask)
            planes, placed = assign_layers(masks, (h, w))
            first_layer = len(layer_bytes)
            for plane in planes:
                layer_bytes.append(_encode(".png", plane, [cv2.IMWRITE_PNG_COMPRESSION, 9]))
                layer_images.append(image_index)
            objects.extend((first_layer + slot, label, part) for slot, label in placed)
            part_objects += len(samples)
            if progress and (n + 1) % 100 == 0:
                size = (sum(map(len, image_bytes)) + sum(map(len, layer_bytes))) / MIB
                progress(f"part {part} ({spec.get('type')}): {n + 1}/{len(groups)} images, {size:.1f} MiB")
        parts.append({"name": getattr(source, "name", spec.get("type")), "type": spec.get("type"),
                      "weight": weight, "images": len(groups), "objects": part_objects})

    def arrays_at(quality: int) -> dict[str, np.ndarray]:
        chunks = image_bytes + layer_bytes
        offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
        n = len(image_bytes)
        index = {
            "format": PACK_FORMAT, "image_ids": image_ids, "parts": parts, "short_side": short_side,
            "encoding": encoding, "quality": quality, "config": config_name, "sources_digest": sources_digest(cfg),
            "holdout": {"source": cfg.holdout_source, "fraction": cfg.holdout_fraction,
                        "seed": cfg.seed if cfg.holdout_seed is None else cfg.holdout_seed,
                        "images_left_out": len({val_view.image_id(i) for i in range(len(val_view))}) if val_view else 0},
        }
        return {
            "blob": np.frombuffer(b"".join(chunks), dtype=np.uint8),
            "images": np.stack([image_parts, offsets[:n], offsets[1:n + 1] - offsets[:n]], axis=1).reshape(-1, 3),
            "layers": np.stack([layer_images, offsets[n:-1], offsets[n + 1:] - offsets[n:-1]], axis=1).reshape(-1, 3),
            "objects": np.asarray(objects, dtype=np.int64).reshape(-1, 3),
            "index": np.frombuffer(json.dumps(index).encode(), dtype=np.uint8),
        }

    arrays = arrays_at(quality)
    total = sum(a.nbytes for a in arrays.values()) + NPZ_OVERHEAD
    while max_mib is not None and total > max_mib * MIB and min_quality is not None and quality - 5 >= min_quality:
        quality -= 5
        if progress:
            progress(f"{total / MIB:.1f} MiB is over {max_mib:.1f} MiB: images again at quality {quality}")
        image_bytes = [_encode(ext, cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), [quality_flag, quality])
                       for b in image_bytes]
        arrays = arrays_at(quality)
        total = sum(a.nbytes for a in arrays.values()) + NPZ_OVERHEAD
    if max_mib is not None and total > max_mib * MIB:
        raise ValueError(f"the packed set would take {total / MIB:.1f} MiB, over the {max_mib:g} MiB allowed: "
                         f"lower --quality (now {quality}) or --short-side (now {short_side})")
    if progress:
        progress(f"encoded {len(image_bytes)} images (quality {quality}) and {len(layer_bytes)} mask layers: "
                 f"{total / MIB:.1f} MiB")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(out)
    return PackSummary(path=str(out), bytes=out.stat().st_size, images=len(image_bytes), objects=len(objects),
                       layers=len(layer_bytes), seconds=time.time() - started, parts=parts, quality=quality)


class PackedSet:
    """The arrays of one packed file, decoded on demand (shared by the parts that read it)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no packed training set at {path} (write one with `fcanet pack`)")
        with np.load(path) as data:
            missing = {"blob", "images", "layers", "objects", "index"} - set(data.files)
            if missing:
                raise ValueError(f"{path} is not a packed training set: no {sorted(missing)}")
            self.blob = data["blob"]
            self.images, self.layers, self.objects = data["images"], data["layers"], data["objects"]
            self.index = json.loads(data["index"].tobytes().decode())
        if self.index.get("format") != PACK_FORMAT:
            raise ValueError(f"{path}: packed format {self.index.get('format')}, this code reads {PACK_FORMAT}")
        self.path = path

    @property
    def parts(self) -> list[dict[str, Any]]:
        return self.index["parts"]

    def _bytes(self, offset: int, length: int) -> np.ndarray:
        return self.blob[offset:offset + length]

    def image(self, image: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        _, off, n = self.images[image]
        bgr = cv2.imdecode(self._bytes(int(off), int(n)), cv2.IMREAD_COLOR)
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def mask(self, obj: int) -> np.ndarray:
        """(H, W) bool."""
        layer, label, _ = self.objects[obj]
        _, off, n = self.layers[int(layer)]
        return cv2.imdecode(self._bytes(int(off), int(n)), cv2.IMREAD_UNCHANGED) == int(label)

    def image_of(self, obj: int) -> int:
        return int(self.layers[int(self.objects[obj][0])][0])


def packed_source_specs(path: str | Path) -> list[dict[str, Any]]:
    """Source specs [{"type": "packed", "path", "part", "weight"}] for every part of a pack,
    weighted as the config that wrote it."""
    packed = PackedSet(path)
    return [{"type": "packed", "path": str(path), "part": i, "weight": p["weight"]}
            for i, p in enumerate(packed.parts)]
