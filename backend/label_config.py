"""What the backend needs from a project's labeling config (parsed with label-studio-sdk).

The shipped config (`label_config.xml`) has an `Image`, a `BrushLabels` on it (where the
masks go) and a smart `KeyPointLabels` with the same label values (how the labeler clicks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import RequestError

SHIPPED_CONFIG = Path(__file__).with_name("label_config.xml")


@dataclass(frozen=True)
class BrushTarget:
    """Where a mask for one label goes: the BrushLabels control and the Image it labels."""

    from_name: str
    to_name: str
    label: str


@dataclass(frozen=True)
class LabelConfig:
    """images: {Image name: task data key}; brushes: {BrushLabels name: (Image names, labels)}."""

    images: dict[str, str]
    brushes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]

    def image_key(self, to_name: str | None = None) -> str:
        """The task data key holding the image (e.g. "image" for value="$image")."""
        if not self.images:
            raise RequestError("the labeling config has no <Image> tag")
        if to_name is None or to_name not in self.images:
            return next(iter(self.images.values()))
        return self.images[to_name]

    def brush_for(self, to_name: str | None, label: str) -> BrushTarget:
        """The BrushLabels control on to_name that has label; RequestError (422) if none."""
        if not self.brushes:
            raise RequestError("the labeling config has no <BrushLabels> tag for the masks")
        known = []
        for name, (targets, labels) in self.brushes.items():
            if to_name is not None and to_name not in targets:
                continue
            known.extend(labels)
            if label in labels:
                return BrushTarget(from_name=name, to_name=to_name or targets[0], label=label)
        raise RequestError(f"unknown label {label!r}: the BrushLabels of the labeling config have "
                           f"{sorted(set(known)) or 'no labels'}" + (f" for image {to_name!r}" if to_name else ""))

    def brush_labels(self) -> set[str]:
        return {label for _, labels in self.brushes.values() for label in labels}


@lru_cache(maxsize=64)
def parse_label_config(xml: str) -> LabelConfig:
    """Parse a labeling config; RequestError (422) when it cannot be read."""
    from label_studio_sdk.label_interface import LabelInterface

    if not isinstance(xml, str) or not xml.strip():
        raise RequestError("the labeling config is empty")
    try:
        interface = LabelInterface(xml)
    except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds for bad XML
        raise RequestError(f"the labeling config cannot be parsed: {exc}") from None
    images = {o.name: str(o.value or "").lstrip("$") for o in interface.objects if o.tag == "Image"}
    brushes = {c.name: (tuple(c.to_name or ()), tuple(c.labels or ())) for c in interface.controls
               if c.tag == "BrushLabels"}
    return LabelConfig(images=images, brushes=brushes)


def shipped_label_config() -> str:
    return SHIPPED_CONFIG.read_text(encoding="utf-8")
