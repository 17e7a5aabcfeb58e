"""What one correction is, and the checks a submission must pass before anything is written.

A correction is one object a labeler finished: the final mask, the ordered clicks that led
to it (the first click is the anchor and is positive) and where the image is. Coordinates
are (x, y) in pixels of the original image, as everywhere in fcanet.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..clicks import Click, validate_clicks
from ..errors import ClickError, FcanetInputError
from ..image_io import max_image_pixels


class StoreError(FcanetInputError):
    """A submission the store refuses (bad mask, clicks, ids), or a lookup that finds nothing."""


class StoreUnavailableError(RuntimeError):
    """The database or the files directory cannot be reached or written (not the caller's fault)."""


#: Short identifiers for where a correction came from: "label_studio", "gradio", ...
_SOURCE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_MAX_ID_LENGTH = 200
_MAX_LABEL_LENGTH = 200
_MAX_DROPPED = 1000
_MAX_DROPPED_JSON = 64 * 1024


@dataclass(frozen=True)
class CorrectionRecord:
    """One stored object mask with its clicks.

    image_path and mask_path are relative to the store's files directory; image_path is None
    when only a reference (image_ref, e.g. a Label Studio URL) is known. clicks are in click
    order, the first is the anchor. height, width: the mask's (and image's) size in pixels.
    created_at / updated_at: ISO 8601 UTC; a replaced record keeps its created_at.
    object_index: the position of this object among the objects of one annotation.
    region_id: the front end's id of the object (Label Studio's brush region id), if known.
    dropped_clicks: submitted clicks that were not stored, each a dict with at least
    "reason" (why) and what was known of the click (e.g. its keypoint id and coordinates).

    Provenance (None where the front end does not know it): `author` is the labeler (Label
    Studio's completed_by, as email or user id), model_version the model whose predictions
    drew the mask, click_count the clicks the labeler made for this object, lead_time_s the
    seconds spent on the annotation (Label Studio's lead_time).
    """

    id: str
    source: str
    project: str | None
    task_id: str | None
    annotation_id: str | None
    image_sha256: str | None
    image_path: str | None
    image_ref: str | None
    clicks: tuple[Click, ...]
    mask_path: str
    height: int
    width: int
    labels: tuple[str, ...]
    author: str | None
    created_at: str
    updated_at: str
    object_index: int = 0
    region_id: str | None = None
    dropped_clicks: tuple[dict[str, Any], ...] = ()
    model_version: str | None = None
    click_count: int | None = None
    lead_time_s: float | None = None

    @property
    def labeler(self) -> str | None:
        return self.author

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (clicks as [x, y, positive] lists)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["clicks"] = [c.to_list() for c in self.clicks]
        d["labels"] = list(self.labels)
        d["dropped_clicks"] = [dict(c) for c in self.dropped_clicks]
        return d


@dataclass(frozen=True)
class ObjectSubmission:
    """One object of a submission after validation: (H, W) bool mask, clicks, labels, and
    optionally the front end's region id, the clicks dropped (with reasons) and keep_clicks:
    when the submission knows no clicks for the object (none given, none dropped), keep the
    clicks stored before for the same object of the same annotation instead of erasing them."""

    mask: np.ndarray
    clicks: tuple[Click, ...]
    labels: tuple[str, ...]
    region_id: str | None = None
    dropped_clicks: tuple[dict[str, Any], ...] = ()
    keep_clicks: bool = False


# ----------------------------------------------------------------------------- checks
def check_source(source: Any) -> str:
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise StoreError(
            f"source must be a short lower-case id like 'label_studio' or 'gradio', got {source!r}"
        )
    return source


def check_optional_id(name: str, value: Any) -> str | None:
    """Ids arrive as ints (Label Studio) or strings; both are stored as text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise StoreError(f"{name} must be a string or an integer, got {type(value).__name__}")
    text = str(value)
    if not text or len(text) > _MAX_ID_LENGTH:
        raise StoreError(f"{name} must be 1 to {_MAX_ID_LENGTH} characters, got {len(text)}")
    return text


def check_mask(mask: Any) -> np.ndarray:
    """(H, W) bool, 0/1 or 0/255 array -> (H, W) bool; refuses other shapes, values, empty masks
    and masks over the image pixel limit (nothing larger than an image can be stored)."""
    if mask is None:
        raise StoreError("a correction needs its final mask")
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise StoreError(f"the mask must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise StoreError(f"the mask is empty ({arr.shape[1]}x{arr.shape[0]})")
    if arr.shape[0] * arr.shape[1] > max_image_pixels():
        raise StoreError(f"the mask is {arr.shape[1]}x{arr.shape[0]}, more than the image limit of "
                         f"{max_image_pixels()} pixels")
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "uif":
            raise StoreError(f"the mask must be bool or numeric, got dtype {arr.dtype}")
        values = np.unique(arr)
        if not set(values.tolist()) <= {0, 1, 255}:
            raise StoreError(f"the mask must hold only 0/1 or 0/255 values, got {values[:5].tolist()}...")
        arr = arr > 0
    if not arr.any():
        raise StoreError("the mask is all background: there is no object to store")
    return np.ascontiguousarray(arr)


def check_clicks(clicks: Any, width: int, height: int) -> tuple[Click, ...]:
    """Ordered clicks inside the image, first positive; an empty sequence is allowed (a mask
    drawn by hand has no clicks)."""
    if clicks is None:
        return ()
    try:
        items = list(clicks)
    except TypeError:
        raise StoreError(f"clicks must be a sequence, got {type(clicks).__name__}") from None
    if not items:
        return ()
    try:
        return tuple(validate_clicks(items, width, height))
    except ClickError as exc:
        raise StoreError(f"bad clicks: {exc}") from None


def check_provenance(model_version: Any, click_count: Any, lead_time_s: Any):
    """(model_version, click_count, lead_time_s) checked: a short string, an int >= 0, seconds >= 0."""
    if model_version is not None and (not isinstance(model_version, str) or not model_version
                                      or len(model_version) > _MAX_ID_LENGTH):
        raise StoreError(f"model_version must be a string of 1 to {_MAX_ID_LENGTH} characters, got {model_version!r}")
    if click_count is not None and (isinstance(click_count, bool) or not isinstance(click_count, int) or click_count < 0):
        raise StoreError(f"click_count must be an integer of 0 or more, got {click_count!r}")
    if lead_time_s is not None:
        if isinstance(lead_time_s, bool) or not isinstance(lead_time_s, (int, float)) or not lead_time_s >= 0 \
                or lead_time_s == float("inf"):
            raise StoreError(f"lead_time_s must be a number of seconds, 0 or more, got {lead_time_s!r}")
        lead_time_s = float(lead_time_s)
    return model_version, click_count, lead_time_s


def check_labels(labels: Any) -> tuple[str, ...]:
    if labels is None:
        return ()
    if isinstance(labels, str):
        labels = [labels]
    result = []
    for label in labels:
        if not isinstance(label, str) or not label.strip() or len(label) > _MAX_LABEL_LENGTH:
            raise StoreError(f"each label must be a non-empty string of at most {_MAX_LABEL_LENGTH} characters, got {label!r}")
        result.append(label)
    return tuple(result)


def check_dropped_clicks(dropped: Any) -> tuple[dict[str, Any], ...]:
    """A list of JSON objects, each with a non-empty string "reason"."""
    if dropped is None:
        return ()
    if isinstance(dropped, (str, bytes)) or not isinstance(dropped, Sequence) or len(dropped) > _MAX_DROPPED:
        raise StoreError(f"dropped_clicks must be a list of at most {_MAX_DROPPED} objects")
    result = []
    for item in dropped:
        if not isinstance(item, dict) or not isinstance(item.get("reason"), str) or not item["reason"].strip():
            raise StoreError(f"each dropped click must be an object with a 'reason' string, got {item!r:.200}")
        result.append(dict(item))
    try:
        size = len(json.dumps(result))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"dropped_clicks must be JSON-serialisable: {exc}") from None
    if size > _MAX_DROPPED_JSON:
        raise StoreError(f"dropped_clicks is {size} bytes of JSON, more than {_MAX_DROPPED_JSON}")
    return tuple(result)


def check_object(mask: Any, clicks: Any, labels: Any, *, region_id: Any = None, dropped_clicks: Any = None,
                 keep_clicks: Any = False) -> ObjectSubmission:
    m = check_mask(mask)
    height, width = m.shape
    if region_id is not None:
        if isinstance(region_id, bool) or not isinstance(region_id, (str, int)) \
                or not str(region_id) or len(str(region_id)) > _MAX_ID_LENGTH:
            raise StoreError(f"region_id must be a string of 1 to {_MAX_ID_LENGTH} characters, got {region_id!r:.50}")
        region_id = str(region_id)
    if not isinstance(keep_clicks, bool):
        raise StoreError(f"keep_clicks must be true or false, got {keep_clicks!r:.50}")
    return ObjectSubmission(mask=m, clicks=check_clicks(clicks, width, height), labels=check_labels(labels),
                            region_id=region_id, dropped_clicks=check_dropped_clicks(dropped_clicks),
                            keep_clicks=keep_clicks)


# ----------------------------------------------------------------------------- (de)serialisation
def clicks_to_json(clicks: Sequence[Click]) -> str:
    return json.dumps([c.to_list() for c in clicks])


def clicks_from_json(text: str) -> tuple[Click, ...]:
    return tuple(Click(float(x), float(y), bool(p)) for x, y, p in json.loads(text))


def dropped_to_json(dropped: Sequence[dict[str, Any]]) -> str | None:
    return json.dumps(list(dropped)) if dropped else None


def dropped_from_json(text: str | None) -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(text)) if text else ()
