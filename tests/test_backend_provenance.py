"""A Label Studio annotation's provenance reaches the store: the labeler (completed_by), the
model version that served the interactive predictions, the clicks and the lead time."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from label_studio_sdk.converter import brush

from backend.app import create_app
from backend.config import BackendConfig
from backend.images import ImageFetcher
from backend.label_config import shipped_label_config
from backend_fixtures import LS_URL, TOKEN, FakeLabelStudio, FakePredictor, keypoint, png_bytes, sample_image
from model.corrections import open_store

IMAGE_PATH = "/data/upload/1/abc-object.png"


@pytest.fixture
def setup(tmp_path):
    ls = FakeLabelStudio({IMAGE_PATH: png_bytes(sample_image())})
    config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=LS_URL, label_studio_api_key=TOKEN,
                           watch_promoted_s=0, finetune_steps=0)
    store = open_store(config.data_dir)
    app = create_app(config, predictor=FakePredictor(version="served-7"), store=store,
                     fetcher=ImageFetcher(config, transport=ls.transport))
    with TestClient(app) as client:
        yield client, store


def _event(lead_time, completed_by):
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:50] = True
    result = [{"id": "brush1", "from_name": "mask", "to_name": "image", "type": "brushlabels",
               "original_width": 80, "original_height": 60, "image_rotation": 0,
               "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                         "brushlabels": ["Object"]}},
              keypoint(50, 50, kp_id="k1"), keypoint(10, 10, False, kp_id="k2")]
    return {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": shipped_label_config()},
            "annotation": {"id": 11, "result": result, "task": 7, "completed_by": completed_by,
                           "lead_time": lead_time, "was_cancelled": False},
            "task": {"id": 7, "data": {"image": IMAGE_PATH}, "project": 1}}


def test_webhook_stores_labeler_model_version_clicks_and_lead_time(setup):
    client, store = setup
    r = client.post("/webhook", json=_event(23.4, {"id": 3, "email": "ann@example.org"}))
    assert r.status_code == 200 and r.json()["status"] == "stored", r.text
    [record] = store.list()
    assert (record.labeler, record.model_version, record.click_count, record.lead_time_s) == \
        ("ann@example.org", "served-7", 2, 23.4)
    assert [r.id for r in store.list(model_version="served-7", labeler="ann@example.org")] == [record.id]


def test_a_bad_lead_time_is_noted_not_fatal(setup):
    client, store = setup
    r = client.post("/webhook", json=_event("soon", 3))
    assert r.status_code == 200 and "lead_time" in " ".join(r.json()["notes"])
    [record] = store.list()
    assert record.lead_time_s is None and record.labeler == "3"
