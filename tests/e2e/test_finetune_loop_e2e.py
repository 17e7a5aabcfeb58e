"""The learning loop end to end: the real `fcanet serve` process receives annotations on
/webhook in Label Studio's format, START_TRAINING starts a fine-tuning job in a background
process, and the next /predict answers carry the promoted model's version.

Tiny network and images, two fine-tuning steps, so CI stays fast.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from label_studio_sdk.converter import brush

from backend.label_config import shipped_label_config
from backend_fixtures import keypoint, png_bytes
from model.checkpoint import CheckpointMetadata, save_checkpoint
from model.config import preset
from model.corrections import open_store
from model.network.fcanet import FCANet
from tests.net_utils import free_port

pytestmark = pytest.mark.e2e

W, H = 64, 48


def _scene(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A dark ellipse at a different place in each image, on a light background."""
    yy, xx = np.mgrid[:H, :W]
    cx, cy = 20 + 6 * i, 18 + 3 * i
    mask = ((xx - cx) / 12.0) ** 2 + ((yy - cy) / 9.0) ** 2 <= 1
    img = np.full((H, W, 3), 205, np.uint8)
    img[mask] = (40, 35, 90)
    return img, mask


@pytest.fixture()
def image_server(tmp_path):
    """Serves tmp/images/*.png over http on 127.0.0.1 (an allowed image host)."""
    root = tmp_path / "images"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def backend(tmp_path, image_server):
    root, host = image_server
    net = FCANet(preset("tiny"))
    base = tmp_path / "tiny.safetensors"
    save_checkpoint(base, net, CheckpointMetadata(network=net.config, version="tiny-base", short_side=48,
                                                  provenance={"trained_on": ["nothing"]}))
    port = free_port()
    data = tmp_path / "data"
    log = open(tmp_path / "serve.log", "wb")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "model.cli", "serve", "--port", str(port), "--checkpoint", str(base),
         "--data-dir", str(data), "--allowed-image-hosts", host, "--finetune-steps", "2",
         "--watch-promoted", "0.5", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("fcanet serve did not start: " + (tmp_path / "serve.log").read_text()[-2000:])
    yield url, root, host, data
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _annotation_event(annotation_id: int, task_id: int, image_url: str, mask: np.ndarray) -> dict:
    ys, xs = np.nonzero(mask)
    kp = keypoint(100.0 * float(xs.mean()) / W, 100.0 * float(ys.mean()) / H, width=W, height=H, kp_id=f"k{task_id}")
    result = [kp, {"id": f"b{task_id}", "from_name": "mask", "to_name": "image", "type": "brushlabels",
                   "original_width": W, "original_height": H, "image_rotation": 0,
                   "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                             "brushlabels": ["Object"]}}]
    return {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": shipped_label_config()},
            "annotation": {"id": annotation_id, "result": result, "task": task_id, "completed_by": 1,
                           "was_cancelled": False},
            "task": {"id": task_id, "data": {"image": image_url}, "project": 1}}


def test_webhooks_then_start_training_serve_a_new_model_version(backend):
    url, root, host, data = backend
    n = 4
    for i in range(n):
        img, mask = _scene(i)
        (root / f"{i}.png").write_bytes(png_bytes(img))
        r = httpx.post(url + "/webhook", json=_annotation_event(100 + i, 10 + i, f"http://{host}/{i}.png", mask),
                       timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "stored", r.text

    store = open_store(data)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(rec.image_path for rec in store.list()):
        time.sleep(0.2)  # images are fetched after the webhook answered
    records = store.list()
    assert len(records) == n and all(rec.image_path for rec in records)
    assert all(rec.clicks and rec.clicks[0].positive for rec in records)

    predict_body = {"tasks": [{"id": 10, "data": {"image": f"http://{host}/0.png"}}], "project": "1",
                    "label_config": shipped_label_config(),
                    "params": {"context": {"result": [keypoint(40, 40, width=W, height=H)]}}}
    before = httpx.post(url + "/predict", json=predict_body, timeout=30).json()
    assert before["results"][0]["model_version"] == "tiny-base"

    r = httpx.post(url + "/webhook", json={"action": "START_TRAINING", "project": {"id": 1}}, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "training requested", r.text

    deadline = time.monotonic() + 240
    training = {}
    while time.monotonic() < deadline:
        training = httpx.get(url + "/health", timeout=5).json()["training"]
        if training.get("state") in ("succeeded", "failed"):
            break
        assert training.get("state") == "running", training
        time.sleep(1.0)
    assert training.get("state") == "succeeded", training
    assert training["promoted"], training  # a tie in NoC@90 promotes; a random tiny net ties at the maximum

    deadline = time.monotonic() + 30
    version = "tiny-base"
    while time.monotonic() < deadline and version == "tiny-base":
        version = httpx.post(url + "/predict", json=predict_body, timeout=30).json()["results"][0]["model_version"]
        time.sleep(0.5)
    assert version == training["version"] != "tiny-base"
    promoted = store.promoted_model()
    assert promoted["version"] == version
    # the job continued from the model being served, not from the bundled default
    from model.checkpoint import read_metadata

    assert read_metadata(promoted["path"]).provenance["initialisation"] == str((data.parent / "tiny.safetensors").resolve())
    assert httpx.get(url + "/health", timeout=5).json()["model_version"] == version
