"""The click type and the rules a click sequence must follow.

Coordinates are (x, y) in pixels of the original image: x grows to the right, y grows
down, (0, 0) is the centre of the top-left pixel. A prediction takes an ordered sequence;
the first click is the anchor and must be positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .errors import ClickError


@dataclass(frozen=True)
class Click:
    """One user click: (x, y) in original-image pixels and its sign."""

    x: float
    y: float
    positive: bool = True

    def scaled(self, sx: float, sy: float) -> "Click":
        """The same click in an image resized by factors (sx, sy)."""
        return Click(self.x * sx, self.y * sy, self.positive)

    def to_list(self) -> list:
        return [float(self.x), float(self.y), bool(self.positive)]

    @staticmethod
    def from_any(value) -> "Click":
        """Build a click from a Click, a dict {x, y, positive|is_positive} or [x, y, positive]."""
        if isinstance(value, Click):
            return value
        try:
            if isinstance(value, dict):
                pos = value.get("positive", value.get("is_positive", True))
                return Click(float(value["x"]), float(value["y"]), bool(pos))
            seq = list(value)
            if len(seq) not in (2, 3):
                raise ClickError(f"a click needs 2 or 3 values (x, y[, positive]), got {len(seq)}")
            return Click(float(seq[0]), float(seq[1]), bool(seq[2]) if len(seq) == 3 else True)
        except ClickError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ClickError(f"cannot read a click from {value!r}: {exc}") from None


def validate_clicks(clicks: Iterable, width: int, height: int) -> list[Click]:
    """Return the clicks as a list of Click, or raise ClickError naming what is wrong.

    Integer coordinates are pixel centres, so the image spans [-0.5, width - 0.5] in x. A
    click is accepted from -0.5 up to width (and height), because front ends that work in
    percent of the image size send exactly width for a click on the right edge; it is
    clamped to the last pixel.
    """
    result = [Click.from_any(c) for c in clicks]
    if not result:
        raise ClickError("no clicks given: the first click must be a positive click on the object")
    if not result[0].positive:
        raise ClickError("the first click must be positive: it marks the object (the anchor)")
    for i, c in enumerate(result):
        if not (math.isfinite(c.x) and math.isfinite(c.y)):
            raise ClickError(f"click {i + 1} has a non-finite coordinate ({c.x}, {c.y})")
        if not (-0.5 <= c.x <= width and -0.5 <= c.y <= height):
            raise ClickError(
                f"click {i + 1} at ({c.x:g}, {c.y:g}) is outside the {width}x{height} image"
            )
    return result


def pixel_of(click: Click, width: int, height: int) -> tuple[int, int]:
    """The (row, col) of the pixel a click falls on, clamped to the image."""
    col = min(max(int(round(click.x)), 0), width - 1)
    row = min(max(int(round(click.y)), 0), height - 1)
    return row, col


def object_box(mask: np.ndarray, clicks: Sequence[Click]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), x1 and y1 exclusive: the tight box around a (H, W) bool mask and the
    pixels of the positive clicks (original pixels, as the mask's); None for an empty mask."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    rows_cols = [pixel_of(c, width, height) for c in clicks if c.positive]
    x0 = min([int(xs.min())] + [col for _, col in rows_cols])
    x1 = max([int(xs.max())] + [col for _, col in rows_cols]) + 1
    y0 = min([int(ys.min())] + [row for row, _ in rows_cols])
    y1 = max([int(ys.max())] + [row for row, _ in rows_cols]) + 1
    return x0, y0, x1, y1


def split_clicks(clicks: Sequence[Click]) -> tuple[list[Click], list[Click]]:
    """(positives, negatives), each in click order."""
    return [c for c in clicks if c.positive], [c for c in clicks if not c.positive]
