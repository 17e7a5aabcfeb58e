"""Shared pieces for the backend tests (helper module, not a test file)."""

from __future__ import annotations

import io
import threading
from typing import Any

import httpx
import numpy as np
from PIL import Image

from model import Prediction, validate_clicks

LS_URL = "http://ls.test:8080"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def sample_image(height: int = 60, width: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    img = np.full((height, width, 3), 210, np.uint8)
    img[(yy - height / 2) ** 2 / (height / 4) ** 2 + (xx - width / 2) ** 2 / (width / 4) ** 2 <= 1] = 40
    return img


class FakePredictor:
    """Predicts a disc of `radius` around the first (anchor) click and records every call."""

    def __init__(self, version: str = "fake-1", radius: int = 6):
        self.model_version = version
        self.radius = radius
        self.calls: list[list] = []
        self.refines: list[bool] = []  # the refine flag of every call
        self._lock = threading.Lock()

    def predict(self, image, clicks, *, sis: bool = True, refine: bool = True) -> Prediction:
        rgb = np.asarray(image)
        h, w = rgb.shape[:2]
        clicks = validate_clicks(clicks, w, h)
        with self._lock:
            self.calls.append(list(clicks))
            self.refines.append(refine)
        yy, xx = np.mgrid[:h, :w]
        mask = (yy - clicks[0].y) ** 2 + (xx - clicks[0].x) ** 2 <= self.radius ** 2
        prob = mask.astype(np.float32) * 0.9
        # Like the real predictor: an answer without the graph cut is not final.
        return Prediction(mask=mask, probability=prob, model_version=self.model_version, seconds=0.0, final=refine)


def keypoint(x: float, y: float, positive: bool = True, label: str = "Object", kp_id: str | None = None,
             width: int = 80, height: int = 60, to_name: str = "image", from_name: str = "click") -> dict[str, Any]:
    """A smart keypoint as Label Studio sends it (x, y in percent)."""
    return {"original_width": width, "original_height": height, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": 0.67, "keypointlabels": [label]}, "is_positive": positive,
            "id": kp_id or f"kp{x:g}-{y:g}", "from_name": from_name, "to_name": to_name,
            "type": "keypointlabels", "origin": "manual"}


class FakeLabelStudio:
    """An httpx transport serving /data/upload/... like Label Studio, checking the token."""

    def __init__(self, files: dict[str, bytes], token: str = TOKEN):
        self.files, self.token = files, token
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.raw_path.decode()
        if request.url.host == "ls.test" and request.headers.get("authorization") != f"Token {self.token}":
            return httpx.Response(401, json={"detail": "Authentication credentials were not provided."})
        if path in self.files:
            return httpx.Response(200, content=self.files[path], headers={"content-type": "image/png"})
        return httpx.Response(404, text="not found")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)
