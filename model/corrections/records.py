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


class StoreError(FcanetInputError):
    """A submission the store refuses (bad mask, clicks, ids), or a lookup that finds nothing."""


class StoreUnavailableError(RuntimeError):
    """The database or the files directory cannot be reached or written (not the caller's fault)."""


#: Short identifiers for where a correction came from: "label_studio", "gradio", ...
_SOURCE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_MAX_ID_LENGTH = 200
_MAX_LABEL_LENGTH = 200


@dataclass(frozen=True)
class CorrectionRecord:
    """One stored object mask with its clicks.

    image_path and mask_path are relative to the store's files directory; image_path is None
    when only a reference (image_ref, e.g. a Label Studio URL) is known. clicks are in click
    order, the first is the anchor. height, width: the mask's (and image's) size in pixels.
    created_at / updated_at: ISO 8601 UTC; a replaced record keeps its created_at.
    object_index: the position of this object among the objects of one annotation.

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
        return d


@dataclass(frozen=True)
class ObjectSubmission:
    """One object of a submission after validation: (H, W) bool mask, clicks, labels."""

    mask: np.ndarray
    clicks: tuple[Click, ...]
    labels: tuple[str, ...]


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
    """(H, W) bool, 0/1 or 0/255 array -> (H, W) bool; refuses other shapes, values and empty masks."""
    if mask is None:
        raise StoreError("a correction needs its final mask")
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise StoreError(f"the mask must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise StoreError(f"the mask is empty ({arr.shape[1]}x{arr.shape[0]})")
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


def check_object(mask: Any, clicks: Any, labels: Any) -> ObjectSubmission:
    m = check_mask(mask)
    height, width = m.shape
    return ObjectSubmission(mask=m, clicks=check_clicks(clicks, width, height), labels=check_labels(labels))


# ----------------------------------------------------------------------------- (de)serialisation
def clicks_to_json(clicks: Sequence[Click]) -> str:
    return json.dumps([c.to_list() for c in clicks])


def clicks_from_json(text: str) -> tuple[Click, ...]:
    return tuple(Click(float(x), float(y), bool(p)) for x, y, p in json.loads(text))
