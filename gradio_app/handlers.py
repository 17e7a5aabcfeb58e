"""What each control of the app does, as plain functions over a Session.

No Gradio types leak in except where a handler must read a click event, so every control
can be tested without a browser. User mistakes raise `AppError` with a message for the
page; the wiring in app.py turns it into a warning instead of a broken app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from model import Click, ClickError, FcanetInputError, load_image, validate_clicks

from .render import render
from .state import Session

POSITIVE, NEGATIVE = "positive", "negative"


class AppError(Exception):
    """A message to show in the page."""


def upload(image) -> Session:
    """A new image (any mode) starts a new session with no clicks."""
    if image is None:
        return Session()
    try:
        rgb = load_image(image)
    except FcanetInputError as exc:
        raise AppError(f"cannot use this image: {exc}") from None
    return Session(image=rgb)


def _with_click(session: Session, x: float, y: float, mode: str) -> list[Click]:
    """The session's clicks and one more at (x, y) in original pixels, checked by the predictor's
    own rule (`model.validate_clicks`: the first positive, every click on the image)."""
    if session.image is None:
        raise AppError("upload an image (or pick an example) before clicking")
    clicks = session.clicks + [Click(float(x), float(y), mode != NEGATIVE)]
    height, width = session.image.shape[:2]
    try:
        return validate_clicks(clicks, width, height)
    except ClickError as exc:
        hint = " (switch to positive mode)" if not clicks[0].positive else ""
        raise AppError(f"{exc}{hint}") from None


def add_click(predictor, session: Session, x: float, y: float, mode: str, sis: bool) -> Session:
    """Add a click at (x, y) in original pixels and predict again with the whole sequence."""
    clicks = _with_click(session, x, y, mode)
    return _predict(predictor, session, clicks, sis, session.seconds)


def add_click_progressive(predictor, session: Session, x: float, y: float, mode: str, sis: bool) -> Iterator[Session]:
    """`add_click`, shown as soon as each stage is ready: first the network's mask (Session.refining
    True), then the refined one, from one forward pass (`Predictor.predict_stages`). The last
    Session is the one `add_click` returns."""
    clicks = _with_click(session, x, y, mode)
    stages = getattr(predictor, "predict_stages", None)
    if stages is None:
        yield _predict(predictor, session, clicks, sis, session.seconds)
        return
    produced = stages(session.image, clicks, sis=sis)
    while True:
        try:
            pred = next(produced)
        except StopIteration:
            return
        except FcanetInputError as exc:
            raise AppError(str(exc)) from None
        yield Session(image=session.image, clicks=list(clicks), mask=pred.mask,
                      seconds=list(session.seconds) + [pred.seconds], model_version=pred.model_version,
                      refining=not pred.final)


def undo(predictor, session: Session, sis: bool) -> Session:
    if not session.clicks:
        return session
    clicks = session.clicks[:-1]
    if not clicks:
        return Session(image=session.image)
    return _predict(predictor, session, clicks, sis, session.seconds[:-1], record_time=False)


def reset(session: Session) -> Session:
    return Session(image=session.image)


def toggle_sis(predictor, session: Session, sis: bool) -> Session:
    if not session.clicks:
        return session
    return _predict(predictor, session, session.clicks, sis, session.seconds, record_time=False)


def _predict(predictor, session: Session, clicks, sis: bool, seconds, record_time: bool = True) -> Session:
    try:
        pred = predictor.predict(session.image, clicks, sis=sis)
    except FcanetInputError as exc:
        raise AppError(str(exc)) from None
    times = list(seconds) + [pred.seconds] if record_time else list(seconds)
    return Session(image=session.image, clicks=list(clicks), mask=pred.mask, seconds=times,
                   model_version=pred.model_version)


def view(session: Session, opacity: float) -> np.ndarray | None:
    """The image with the mask overlay and the click markers, at the original size."""
    if session.image is None:
        return None
    mask = session.mask if session.mask is not None else np.zeros(session.image.shape[:2], bool)
    return render(session.image, mask, session.clicks, opacity)


def status(session: Session) -> str:
    if session.image is None:
        return "Upload an image or pick an example, then click on the object."
    if not session.clicks:
        return "Click on the object (the first click is the anchor)."
    last = session.seconds[-1] * 1000 if session.seconds else 0.0
    area = 100.0 * session.mask.mean() if session.mask is not None else 0.0
    neg = sum(not c.positive for c in session.clicks)
    stage = "network's mask in" if session.refining else "last click"
    refining = " · refining the boundary…" if session.refining else ""
    return (f"{len(session.clicks)} clicks ({neg} negative) · {stage} {last:.0f} ms · "
            f"object {area:.1f}% of the image · model {session.model_version}{refining}")


def export_files(session: Session, directory: str) -> tuple[str, str]:
    """(mask PNG path, COCO RLE JSON path) at the image's own size, written into `directory` (the
    browser session's own folder, `downloads.py`), overwriting the previous click's."""
    from model.corrections.coco import mask_geometry

    if session.mask is None:
        raise AppError("there is no mask yet: click on the object first")
    out = Path(directory)
    png = out / "mask.png"
    Image.fromarray(session.mask.astype(np.uint8) * 255).save(png)
    h, w = session.mask.shape
    doc = {
        "images": [{"id": 1, "width": int(w), "height": int(h), "file_name": "image.png"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, **mask_geometry(session.mask),
                         "clicks": [c.to_list() for c in session.clicks]}],
        "categories": [{"id": 1, "name": "object"}],
    }
    js = out / "mask_coco_rle.json"
    js.write_text(json.dumps(doc))
    return str(png), str(js)


def save_correction(store, session: Session, author: str | None = None) -> str:
    """Store image, ordered clicks and final mask as a correction; returns the record id."""
    if store is None:
        raise AppError("no corrections store is configured (start with --store DIR)")
    if session.mask is None or not session.clicks:
        raise AppError("there is nothing to save yet: click on the object first")
    try:
        return store.add(source="gradio", image=session.image, clicks=session.clicks, mask=session.mask,
                         author=author, model_version=session.model_version or None)
    except FcanetInputError as exc:
        raise AppError(f"could not save the correction: {exc}") from None


def segment(predictor, image, clicks, sis: bool = True) -> np.ndarray:
    """Headless: image + [[x, y, is_positive], ...] in original pixels -> (H, W) uint8 0/255 mask."""
    pred = predictor.predict(image, [Click.from_any(c) for c in clicks], sis=sis)
    return pred.mask_u8()
