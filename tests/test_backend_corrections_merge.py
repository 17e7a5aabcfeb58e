"""What a submitted annotation keeps, over real HTTP (uvicorn on a loopback port):
a brush-only update keeps the clicks stored before for that object (after a restart or once
the click memory forgot them), and a bad keypoint costs only that click: the mask is stored
and the record says which clicks were dropped and why (also in the COCO export)."""

from __future__ import annotations

import json
import sqlite3

import httpx
import numpy as np
import pytest
from label_studio_sdk.converter import brush

from backend.app import create_app
from backend.config import BackendConfig
from backend.images import ImageFetcher
from backend.label_config import shipped_label_config
from backend_fixtures import LS_URL, TOKEN, FakeLabelStudio, FakePredictor, keypoint, png_bytes, sample_image
from live_servers import serve
from model.corrections import open_store
from model.corrections.coco import export_coco

IMAGE_PATH = "/data/upload/1/abc-object.png"


@pytest.fixture
def backend(tmp_path):
    """start() serves a fresh app (a restarted backend: empty click memory) on one store."""
    config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=LS_URL, label_studio_api_key=TOKEN,
                           watch_promoted_s=0, finetune_steps=0)
    store = open_store(config.data_dir)
    ls = FakeLabelStudio({IMAGE_PATH: png_bytes(sample_image())})

    def start():
        app = create_app(config, predictor=FakePredictor(), store=store,
                         fetcher=ImageFetcher(config, transport=ls.transport))
        return serve(app)

    return start, store


def _brush(mask: np.ndarray, region_id: str = "brush1") -> dict:
    return {"id": region_id, "from_name": "mask", "to_name": "image", "type": "brushlabels",
            "original_width": 80, "original_height": 60, "image_rotation": 0,
            "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                      "brushlabels": ["Object"]}}


def _box(y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros((60, 80), bool)
    m[y0:y1, x0:x1] = True
    return m


def _event(action: str, result: list, annotation_id: int = 11) -> dict:
    return {"action": action, "project": {"id": 1, "label_config": shipped_label_config()},
            "annotation": {"id": annotation_id, "result": result, "task": 7, "completed_by": 1},
            "task": {"id": 7, "data": {"image": IMAGE_PATH}, "project": 1}}


def _predict(client, points) -> dict:
    body = {"tasks": [{"id": 7, "data": {"image": IMAGE_PATH}}], "project": "1.1712345678",
            "label_config": shipped_label_config(), "params": {"context": {"result": points}}}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["result"][0]


def _clicks(record) -> list[tuple]:
    return [(c.x, c.y, c.positive) for c in record.clicks]


def test_a_brush_only_update_after_a_restart_keeps_the_stored_clicks(backend):
    start, store = backend
    with start() as url, httpx.Client(base_url=url) as client:
        created = _event("ANNOTATION_CREATED", [_brush(_box(20, 40, 30, 50)), keypoint(50, 50, kp_id="k1"),
                                                keypoint(10, 10, False, kp_id="k2")])
        assert client.post("/webhook", json=created).status_code == 200
    [before] = store.list()
    assert _clicks(before) == [(40, 30, True), (8, 6, False)]

    with start() as url, httpx.Client(base_url=url) as client:  # restarted: nothing remembered
        r = client.post("/webhook", json=_event("ANNOTATION_UPDATED", [_brush(_box(20, 45, 30, 55))]))
        assert r.status_code == 200 and r.json()["status"] == "stored", r.text
    [after] = store.list()
    assert after.id == before.id and store.load_mask(after).sum() == 25 * 25
    assert _clicks(after) == [(40, 30, True), (8, 6, False)]


@pytest.mark.parametrize("kind", ["no label", "outside the image"])
def test_an_update_whose_only_keypoint_is_bad_keeps_the_stored_clicks_and_records_the_drop(backend, kind):
    start, store = backend
    with start() as url, httpx.Client(base_url=url) as client:
        created = _event("ANNOTATION_CREATED", [_brush(_box(20, 40, 30, 50)), keypoint(50, 50, kp_id="k1"),
                                                keypoint(10, 10, False, kp_id="k2")])
        assert client.post("/webhook", json=created).status_code == 200

    with start() as url, httpx.Client(base_url=url) as client:  # restarted; the update brings one unusable click
        updated = _event("ANNOTATION_UPDATED", [_brush(_box(20, 45, 30, 55)), BAD_KEYPOINTS[kind]()])
        r = client.post("/webhook", json=updated)
        assert r.status_code == 200 and r.json()["status"] == "stored", r.text
    [after] = store.list()
    assert store.load_mask(after).sum() == 25 * 25
    assert _clicks(after) == [(40, 30, True), (8, 6, False)]
    assert [d["keypoint_id"] for d in after.dropped_clicks] == ["bad"]


def test_brush_only_updates_keep_each_objects_clicks_by_region_even_when_reordered(backend):
    start, store = backend
    with start() as url, httpx.Client(base_url=url) as client:
        first = _predict(client, [keypoint(25, 25, kp_id="a1"), keypoint(5, 5, False, kp_id="a2")])
        second = _predict(client, [keypoint(75, 75, kp_id="b1")])
        created = _event("ANNOTATION_CREATED", [_brush(_box(10, 20, 15, 25), first["id"]),
                                                _brush(_box(40, 50, 55, 65), second["id"])])
        assert client.post("/webhook", json=created).status_code == 200
    by_region = {r.region_id: _clicks(r) for r in store.list()}
    assert by_region == {first["id"]: [(20, 15, True), (4, 3, False)], second["id"]: [(60, 45, True)]}

    with start() as url, httpx.Client(base_url=url) as client:  # restarted, and the objects come in the other order
        updated = _event("ANNOTATION_UPDATED", [_brush(_box(40, 52, 55, 67), second["id"]),
                                                _brush(_box(10, 22, 15, 27), first["id"])])
        assert client.post("/webhook", json=updated).status_code == 200
    records = store.list()
    assert len(records) == 2
    assert {r.region_id: _clicks(r) for r in records} == by_region
    assert {r.region_id: int(store.load_mask(r).sum()) for r in records} == {first["id"]: 144, second["id"]: 144}


BAD_KEYPOINTS = {
    "outside the image": lambda: keypoint(150, 20, kp_id="bad"),
    "non-numeric coordinates": lambda: {**keypoint(30, 30, kp_id="bad"), "value": {"x": "30", "y": 30,
                                                                                    "keypointlabels": ["Object"]}},
    "rotated image": lambda: {**keypoint(30, 30, kp_id="bad"), "image_rotation": 90},
    "no label": lambda: {**keypoint(30, 30, kp_id="bad"), "value": {"x": 30, "y": 30}},
}


@pytest.mark.parametrize("kind", sorted(BAD_KEYPOINTS))
def test_one_bad_keypoint_is_dropped_and_recorded_the_mask_and_other_clicks_stored(backend, tmp_path, kind):
    start, store = backend
    result = [_brush(_box(20, 40, 30, 50)), keypoint(50, 50, kp_id="k1"), BAD_KEYPOINTS[kind](),
              keypoint(10, 10, False, kp_id="k2")]
    with start() as url, httpx.Client(base_url=url) as client:
        r = client.post("/webhook", json=_event("ANNOTATION_CREATED", result))
        assert r.status_code == 200 and r.json()["status"] == "stored", r.text
        assert any("dropped_clicks" in note for note in r.json()["notes"])
    [record] = store.list()
    assert store.load_mask(record).sum() == 400
    assert _clicks(record) == [(40, 30, True), (8, 6, False)]
    [dropped] = record.dropped_clicks
    assert dropped["keypoint_id"] == "bad" and dropped["reason"]

    # the export shows it too
    out = tmp_path / "coco.json"
    export_coco(store, out)
    [annotation] = json.loads(out.read_text())["annotations"]
    assert annotation["clicks"] == [[40, 30, True], [8, 6, False]]
    assert annotation["dropped_clicks"] == [dropped]


def test_a_negative_click_left_without_its_anchor_is_dropped_with_the_reason(backend):
    start, store = backend
    result = [_brush(_box(20, 40, 30, 50)), keypoint(-5, 50, kp_id="anchor"), keypoint(10, 10, False, kp_id="neg"),
              keypoint(50, 50, kp_id="pos")]
    with start() as url, httpx.Client(base_url=url) as client:
        assert client.post("/webhook", json=_event("ANNOTATION_CREATED", result)).status_code == 200
    [record] = store.list()
    assert _clicks(record) == [(40, 30, True)]
    assert [d["keypoint_id"] for d in record.dropped_clicks] == ["anchor", "neg"]
    assert "outside the image" in record.dropped_clicks[0]["reason"]
    assert "first click must be positive" in record.dropped_clicks[1]["reason"]


def test_a_store_written_before_region_ids_opens_and_keeps_its_records(tmp_path):
    """Stores of the first schema get the new columns in place; their records read as before."""
    folder = tmp_path / "old"
    folder.mkdir()
    with sqlite3.connect(folder / "corrections.sqlite3") as conn:
        conn.executescript("""
            CREATE TABLE corrections (id TEXT PRIMARY KEY, dedup_key TEXT, object_index INTEGER NOT NULL DEFAULT 0,
                source TEXT NOT NULL, project TEXT, task_id TEXT, annotation_id TEXT, image_sha256 TEXT,
                image_path TEXT, image_ref TEXT, clicks TEXT NOT NULL, mask_path TEXT NOT NULL,
                height INTEGER NOT NULL, width INTEGER NOT NULL, labels TEXT NOT NULL, author TEXT,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            CREATE UNIQUE INDEX corrections_dedup ON corrections (dedup_key, object_index);
            CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO store_meta VALUES ('schema_version', '1');
            INSERT INTO corrections VALUES ('r1', 'label_studio\x1f1\x1f11', 0, 'label_studio', '1', '7', '11', NULL,
                NULL, 'https://example.com/a.png', '[[4.0, 5.0, true]]', 'masks/ab/ab.png', 6, 8, '["Object"]',
                NULL, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00');
        """)
    store = open_store(folder)
    [record] = store.list()
    assert (record.id, record.region_id, record.dropped_clicks) == ("r1", None, ())
    assert _clicks(record) == [(4.0, 5.0, True)]
    # a brush-only update of that annotation keeps its clicks (matched by position and label)
    store.add_annotation(source="label_studio", project="1", annotation_id="11", image=None,
                         image_ref="https://example.com/a.png",
                         objects=[{"mask": np.ones((6, 8), bool), "clicks": [], "labels": ["Object"],
                                   "region_id": "r", "keep_clicks": True}])
    [record] = store.list()
    assert record.region_id == "r" and _clicks(record) == [(4.0, 5.0, True)]
