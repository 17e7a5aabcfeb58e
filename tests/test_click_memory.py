"""Two labelers on one task, over real HTTP (uvicorn on a loopback port): each keeps their
own click sequence. Label Studio identifies the labeler of an interactive /predict request
only through the task's `drafts` (filtered to the requesting user; each draft's `user` is
their e-mail). A request without drafts falls back to the task's shared sequence, which the
labeler's first identified request adopts."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from label_studio_sdk.converter import brush

from backend.app import create_app
from backend.click_memory import labeler_of
from backend.config import BackendConfig
from backend.images import ImageFetcher
from backend.label_config import shipped_label_config
from backend_fixtures import LS_URL, TOKEN, FakeLabelStudio, FakePredictor, keypoint, png_bytes, sample_image
from live_servers import serve
from model.corrections import open_store

IMAGE_PATH = "/data/upload/1/abc-object.png"


@pytest.fixture
def backend(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=LS_URL, label_studio_api_key=TOKEN,
                           watch_promoted_s=0, finetune_steps=0)
    store = open_store(config.data_dir)
    predictor = FakePredictor()
    app = create_app(config, predictor=predictor, store=store,
                     fetcher=ImageFetcher(config, transport=FakeLabelStudio({IMAGE_PATH: png_bytes(sample_image())})
                                          .transport))
    with serve(app) as url, httpx.Client(base_url=url) as client:
        yield client, predictor, store


def _draft(user: str, draft_id: int) -> dict:
    """A draft as Label Studio 1.23 serialises it for the ML backend (AnnotationDraftSerializer)."""
    return {"id": draft_id, "user": user, "created_username": f"{user}, {draft_id}", "created_ago": "0 minutes",
            "result": [], "lead_time": 3.2, "was_postponed": False, "task": 7, "annotation": None}


def _click(client, predictor, point, user: str | None):
    """One smart click (auto-accept mode: the keypoint arrives alone) by `user` (None: no drafts yet)."""
    task = {"id": 7, "data": {"image": IMAGE_PATH}, "annotations": [], "predictions": [],
            "drafts": [_draft(user, {"a@example.com": 1, "b@example.com": 2}[user])] if user else []}
    body = {"tasks": [task], "project": "1.1712345678", "label_config": shipped_label_config(),
            "params": {"login": None, "password": None, "context": {"result": [point]}}}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    return [(c.x, c.y, c.positive) for c in predictor.calls[-1]], r.json()["results"][0]["result"][0]


A_ANCHOR, B_ANCHOR = (20, 15, True), (60, 45, True)


def test_two_labelers_on_one_task_keep_their_own_click_sequences(backend):
    client, predictor, store = backend
    a1, a_brush = _click(client, predictor, keypoint(25, 25, kp_id="a1"), "a@example.com")
    b1, b_brush = _click(client, predictor, keypoint(75, 75, kp_id="b1"), "b@example.com")
    assert (a1, b1) == ([A_ANCHOR], [B_ANCHOR])
    a2, a_brush2 = _click(client, predictor, keypoint(30, 30, False, kp_id="a2"), "a@example.com")
    assert a2 == [A_ANCHOR, (24, 18, False)], "labeler a's negative click continued labeler b's object"
    assert a_brush2["id"] == a_brush["id"]
    b2, b_brush2 = _click(client, predictor, keypoint(70, 70, False, kp_id="b2"), "b@example.com")
    assert b2 == [B_ANCHOR, (56, 42, False)]
    assert b_brush2["id"] == b_brush["id"]

    # a submits: the record holds a's clicks, found through a's brush id
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": shipped_label_config()},
             "annotation": {"id": 21, "result": [a_brush2], "task": 7, "completed_by": 1},
             "task": {"id": 7, "data": {"image": IMAGE_PATH}, "project": 1}}
    assert client.post("/webhook", json=event).status_code == 200
    [record] = store.list()
    assert [(c.x, c.y, c.positive) for c in record.clicks] == [A_ANCHOR, (24, 18, False)]


def test_clicks_made_before_the_first_draft_are_adopted_by_that_labeler(backend):
    client, predictor, _ = backend
    a1, a_brush = _click(client, predictor, keypoint(25, 25, kp_id="a1"), None)  # a, not identified yet
    b1, _ = _click(client, predictor, keypoint(75, 75, kp_id="b1"), "b@example.com")
    assert (a1, b1) == ([A_ANCHOR], [B_ANCHOR])
    a2, a_brush2 = _click(client, predictor, keypoint(30, 30, False, kp_id="a2"), "a@example.com")
    assert a2 == [A_ANCHOR, (24, 18, False)]
    assert a_brush2["id"] == a_brush["id"]
    b2, _ = _click(client, predictor, keypoint(70, 70, False, kp_id="b2"), "b@example.com")
    assert b2 == [B_ANCHOR, (56, 42, False)]


@pytest.mark.parametrize("drafts, expected", [
    ([_draft("a@example.com", 1), _draft("a@example.com", 5)], "a@example.com"),
    ([{**_draft("a@example.com", 1), "user": {"id": 3, "email": "a@example.com"}}], "a@example.com"),
    ([], None),
    ([_draft("a@example.com", 1), _draft("b@example.com", 2)], None),
    ([{"id": 1, "result": []}], None),
    ("not a list", None),
])
def test_the_labeler_is_read_from_the_drafts(drafts, expected):
    assert labeler_of({"id": 7, "data": {}, "drafts": drafts}) == expected
