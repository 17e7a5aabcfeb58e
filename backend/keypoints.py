"""Label Studio keypoints at the boundary: parsing, percent -> pixel conversion, grouping.

Label Studio sends a smart keypoint as percent of the displayed image (0 = left/top edge,
100 = right/bottom edge). fcanet works in pixels of the original image. The conversion
happens in `percent_to_pixels` and nowhere else: x = x% / 100 * width, y = y% / 100 * height
(so a click on the right edge gives x = width, which `validate_clicks` accepts and clamps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from model import Click, ClickError

from .errors import BadRequest, RequestError, describe

KEYPOINT_TYPES = ("keypointlabels", "keypoint")


@dataclass(frozen=True)
class SmartKeypoint:
    """One keypoint as Label Studio sent it (coordinates still in percent)."""

    region_id: str | None
    label: str
    from_name: str | None
    to_name: str | None
    x_percent: float
    y_percent: float
    positive: bool


def percent_to_pixels(x_percent: float, y_percent: float, width: int, height: int) -> tuple[float, float]:
    """Label Studio percent coordinates -> (x, y) in pixels of a width x height image."""
    return x_percent / 100.0 * width, y_percent / 100.0 * height


def parse_keypoints(items: Any) -> list[SmartKeypoint]:
    """Keypoints of a context's or annotation's `result` list, in the order given.

    Items of other types (brushes, rectangles, ...) are skipped. Raises BadRequest naming
    the item when a keypoint lacks coordinates or a label.
    """
    return [_parse_one(i, item) for i, item in _keypoint_items(items)]


def parse_keypoints_lenient(items: Any) -> tuple[list[SmartKeypoint], list[tuple[tuple[str | None, str | None], dict[str, Any]]]]:
    """Like `parse_keypoints`, but a bad keypoint is dropped instead of failing the whole list
    (for submitted annotations, where the mask must not be lost for one bad click).

    Returns (keypoints, dropped): dropped holds ((to_name, label or None), description) per
    bad keypoint; the description is {"keypoint_id", "result_item", "reason", ...} as stored in
    a record's dropped_clicks.
    """
    points, dropped = [], []
    for i, item in _keypoint_items(items):
        try:
            points.append(_parse_one(i, item))
        except RequestError as exc:
            value = item.get("value") if isinstance(item.get("value"), dict) else {}
            labels = value.get("keypointlabels", value.get("labels"))
            label = labels[0] if isinstance(labels, list) and labels and isinstance(labels[0], str) else None
            to_name = item.get("to_name") if isinstance(item.get("to_name"), str) else None
            dropped.append(((to_name, label), _describe(item, i, str(exc))))
    return points, dropped


def _describe(item: dict[str, Any], index: int, reason: str) -> dict[str, Any]:
    """What a dropped-click record keeps of a keypoint (only JSON-safe, short values)."""
    value = item.get("value") if isinstance(item.get("value"), dict) else {}
    described: dict[str, Any] = {"keypoint_id": None, "result_item": index + 1, "reason": reason}
    if isinstance(item.get("id"), (str, int)) and not isinstance(item.get("id"), bool):
        described["keypoint_id"] = str(item["id"])[:200]
    for name in ("x", "y"):
        v = finite_number(value.get(name))
        if v is not None:
            described[f"{name}_percent"] = v
    if isinstance(item.get("is_positive", True), bool):
        described["positive"] = item.get("is_positive", True)
    return described


def _keypoint_items(items: Any) -> list[tuple[int, dict[str, Any]]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadRequest(f"a result must be a list of regions, got {type(items).__name__}")
    found = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"result item {i + 1} must be an object, got {type(item).__name__}")
        if item.get("type") in KEYPOINT_TYPES:
            found.append((i, item))
    return found


def _parse_one(i: int, item: dict[str, Any]) -> SmartKeypoint:
    value = item.get("value")
    if not isinstance(value, dict):
        raise BadRequest(f"keypoint {i + 1} has no 'value' object")
    x, y = value.get("x"), value.get("y")
    xf, yf = finite_number(x), finite_number(y)
    if xf is None or yf is None:
        raise BadRequest(f"keypoint {i + 1} needs numeric value.x and value.y (percent), got "
                         f"{describe(x)}, {describe(y)}")
    labels = value.get("keypointlabels", value.get("labels"))
    if not isinstance(labels, list) or not labels or not all(isinstance(l, str) and l for l in labels):
        raise BadRequest(f"keypoint {i + 1} needs a label (value.keypointlabels), got {describe(labels)}")
    rotation = item.get("image_rotation", 0) or 0
    if finite_number(rotation) is None:
        raise BadRequest(f"keypoint {i + 1}: image_rotation must be a number, got {describe(rotation)}")
    if rotation % 360:
        raise RequestError(f"keypoint {i + 1} is on a rotated image (image_rotation={describe(rotation)}): "
                           "rotate the image back to 0 degrees to use smart clicks")
    positive = item.get("is_positive", True)
    if not isinstance(positive, bool):
        raise BadRequest(f"keypoint {i + 1}: is_positive must be true or false, got {describe(positive)}")
    region_id = item.get("id")
    if region_id is not None and (isinstance(region_id, bool) or not isinstance(region_id, (str, int))):
        raise BadRequest(f"keypoint {i + 1}: id must be a string, got {describe(region_id)}")
    return SmartKeypoint(
        region_id=str(region_id) if region_id is not None else None, label=labels[0],
        from_name=optional_name(item.get("from_name"), f"keypoint {i + 1}: from_name"),
        to_name=optional_name(item.get("to_name"), f"keypoint {i + 1}: to_name"),
        x_percent=xf, y_percent=yf, positive=positive,
    )


def finite_number(value: Any) -> float | None:
    """value as a finite float, or None when it is not a number (bools, strings, ...) or is
    not finite or does not fit a float (an integer of hundreds of digits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def optional_name(value: Any, what: str) -> str | None:
    """A control or object name (from_name, to_name): a string or absent."""
    if value is None or isinstance(value, str):
        return value
    raise BadRequest(f"{what} must be a string, got {describe(value)}")


def group_by_label(points: Iterable[SmartKeypoint]) -> dict[tuple[str | None, str], list[SmartKeypoint]]:
    """{(to_name, label): keypoints in order}, groups in order of their first keypoint."""
    groups: dict[tuple[str | None, str], list[SmartKeypoint]] = {}
    for p in points:
        groups.setdefault((p.to_name, p.label), []).append(p)
    return groups


def to_clicks(points: Sequence[SmartKeypoint], width: int, height: int) -> list[Click]:
    """Clicks in pixels of the width x height image; ClickError for a keypoint outside it."""
    clicks = []
    for i, p in enumerate(points):
        if not (0.0 <= p.x_percent <= 100.0 and 0.0 <= p.y_percent <= 100.0):
            raise ClickError(f"click {i + 1} at ({p.x_percent:g}%, {p.y_percent:g}%) is outside the image "
                             "(percent coordinates must be within 0-100)")
        x, y = percent_to_pixels(p.x_percent, p.y_percent, width, height)
        clicks.append(Click(x, y, p.positive))
    return clicks


def clicks_in_image(points: Sequence[SmartKeypoint], width: int, height: int) -> tuple[list[Click], list[dict[str, Any]]]:
    """(clicks, dropped) for a submitted annotation: the keypoints inside the image as
    clicks in pixels, in order; a keypoint outside it, or a negative one before any
    positive (it would have no anchor), is dropped and described with its reason."""
    clicks, dropped = [], []
    for i, p in enumerate(points):
        described = {"keypoint_id": p.region_id, "click": i + 1, "x_percent": p.x_percent,
                     "y_percent": p.y_percent, "positive": p.positive}
        if not (0.0 <= p.x_percent <= 100.0 and 0.0 <= p.y_percent <= 100.0):
            dropped.append({**described, "reason": f"outside the image at ({p.x_percent:g}%, {p.y_percent:g}%): "
                                                   "percent coordinates must be within 0-100"})
        elif not clicks and not p.positive:
            dropped.append({**described, "reason": "a negative click before any positive one: the first "
                                                   "click must be positive (the anchor)"})
        else:
            clicks.append(Click(*percent_to_pixels(p.x_percent, p.y_percent, width, height), p.positive))
    return clicks, dropped
