"""Hostile and careless JSON over real HTTP: every client error is a 4xx with JSON {"detail"},
never a 500 or a plain-text traceback; a server bug is a 500 with JSON only."""

from __future__ import annotations

import base64
import copy
import json

import httpx
import numpy as np
import pytest
from label_studio_sdk.converter import brush

from backend.app import create_app
from backend.config import BackendConfig
from backend.label_config import shipped_label_config
from backend_fixtures import FakePredictor, keypoint, png_bytes, sample_image
from live_servers import LiveBackend
from model.corrections import open_store

IMAGE = "data:image/png;base64," + base64.b64encode(png_bytes(sample_image())).decode()
HUGE_INT = "9" * 5000          # beyond Python's int <-> str digit limit
BIG_INT = "9" * 400            # parses, but overflows a float


def _predict(result=None, **task):
    return {"tasks": [{"id": 7, "data": {"image": IMAGE}, **task}], "project": "1",
            "label_config": shipped_label_config(),
            "params": {"context": {"result": [keypoint(50, 50)] if result is None else result}}}


def _webhook():
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:50] = True
    result = [{"id": "b1", "from_name": "mask", "to_name": "image", "type": "brushlabels",
               "original_width": 80, "original_height": 60, "image_rotation": 0,
               "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                         "brushlabels": ["Object"]}}, keypoint(50, 50)]
    return {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": shipped_label_config()},
            "annotation": {"id": 11, "result": result, "completed_by": 1},
            "task": {"id": 7, "data": {"image": IMAGE}, "project": 1}}


def _changed(body, change):
    body = copy.deepcopy(body)
    change(body)
    return json.dumps(body)


def _kp(**value):
    kp = keypoint(50, 50)
    kp["value"].update(value)
    return kp


def _brush(body, **fields):
    body["annotation"]["result"][0].update(fields)


def _with_raw_number(body: dict, path_marker: str, number: str) -> str:
    """JSON text of body with the string "@@" replaced by a raw number literal."""
    return json.dumps(body).replace(f'"{path_marker}"', number)


PREDICT_BODIES = {
    "huge int as x": _with_raw_number(_predict([_kp(x="@@")]), "@@", HUGE_INT),
    "huge int as task id": _with_raw_number(_predict(id="@@"), "@@", HUGE_INT),
    "huge int as project": _with_raw_number({**_predict(), "project": "@@"}, "@@", HUGE_INT),
    "400-digit int as x": _with_raw_number(_predict([_kp(x="@@")]), "@@", BIG_INT),
    "400-digit int as y": _with_raw_number(_predict([_kp(y="@@")]), "@@", "-" + BIG_INT),
    "400-digit int as rotation": _with_raw_number(_predict([{**keypoint(50, 50), "image_rotation": "@@"}]),
                                                  "@@", BIG_INT),
    "1e999 as x": _with_raw_number(_predict([_kp(x="@@")]), "@@", "1e999"),
    "NaN as y": _with_raw_number(_predict([_kp(y="@@")]), "@@", "NaN"),
    "-Infinity as x": _with_raw_number(_predict([_kp(x="@@")]), "@@", "-Infinity"),
    "deep nesting": '{"tasks": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "deep nesting in context": json.dumps(_predict()).replace('"result": [', '"result": [' + "[" * 5000 + "]" * 5000 + ",", 1),
    "list as to_name": _changed(_predict(), lambda b: b["params"]["context"]["result"][0].update(to_name=["image"])),
    "object as from_name": _changed(_predict(), lambda b: b["params"]["context"]["result"][0].update(from_name={})),
    "object as keypoint id": _changed(_predict(), lambda b: b["params"]["context"]["result"][0].update(id={"a": 1})),
    "list as image": _changed(_predict(), lambda b: b["tasks"][0]["data"].update(image=[IMAGE])),
    "number as label_config": _changed(_predict(), lambda b: b.update(label_config=5)),
    "object as project": _changed(_predict(), lambda b: b.update(project={"id": [1]})),
    "string as params.context": _changed(_predict(), lambda b: b["params"].update(context="x")),
    "list as context.result item value": _changed(_predict(), lambda b: b["params"]["context"]["result"][0].update(value=[1])),
    "floats as keypoint labels": _changed(_predict(), lambda b: b["params"]["context"]["result"][0]["value"].update(keypointlabels=[1.5])),
    "number as task": _changed(_predict(), lambda b: b.update(tasks=[5])),
    "not UTF-8": b'{"tasks": "\xff\xfe"}'.decode("latin-1"),
}

WEBHOOK_BODIES = {
    "huge int as annotation id": json.dumps(_webhook()).replace('"id": 11', '"id": ' + HUGE_INT),
    "huge int as width": json.dumps(_webhook()).replace('"original_width": 80', '"original_width": ' + HUGE_INT),
    "400-digit width": json.dumps(_webhook()).replace('"original_width": 80', '"original_width": ' + BIG_INT),
    "1e999 as height": json.dumps(_webhook()).replace('"original_height": 60', '"original_height": 1e999'),
    "float width": json.dumps(_webhook()).replace('"original_width": 80', '"original_width": 80.0'),
    "negative width": json.dumps(_webhook()).replace('"original_width": 80', '"original_width": -80'),
    "NaN in the RLE": json.dumps(_webhook()).replace('"rle": [', '"rle": [NaN, ', 1),
    "floats in the RLE": json.dumps(_webhook()).replace('"rle": [', '"rle": [0.5, ', 1),
    "list as brush to_name": _changed(_webhook(), lambda b: _brush(b, to_name=["image"])),
    "object as brush to_name": _changed(_webhook(), lambda b: _brush(b, to_name={"x": 1})),
    "list as keypoint to_name": _changed(_webhook(), lambda b: b["annotation"]["result"][1].update(to_name=[1])),
    "object as annotation id": _changed(_webhook(), lambda b: b["annotation"].update(id={"x": 1})),
    "list as completed_by": _changed(_webhook(), lambda b: b["annotation"].update(completed_by=[1] * 500)),
    "list as task data image": _changed(_webhook(), lambda b: b["task"]["data"].update(image=[1])),
    "string as brush value": _changed(_webhook(), lambda b: _brush(b, value="x")),
    "deep nesting in annotation": json.dumps(_webhook()).replace('"completed_by": 1',
                                                                 '"completed_by": ' + "[" * 3000 + "]" * 3000),
    "list as action": _changed(_webhook(), lambda b: b.update(action=["ANNOTATION_CREATED"])),
    "deletion with object ids": json.dumps({"action": "ANNOTATIONS_DELETED", "project": 1,
                                            "annotations": [{"id": {"a": [1]}}]}),
}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    config = BackendConfig(data_dir=str(tmp / "data"), watch_promoted_s=0, finetune_steps=0)
    app = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))
    with LiveBackend(app) as live:
        yield live


def _assert_client_error(r):
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/json"), r.text[:300]
    if r.status_code >= 400:
        assert isinstance(r.json().get("detail"), str) and len(r.json()["detail"]) < 2000
    else:
        # Only a submitted annotation may be taken in part: its bad keypoint dropped and noted.
        assert "dropped" in r.text, r.text[:300]


def test_no_predict_payload_ends_in_a_500(backend):
    failures = {}
    for name, body in PREDICT_BODIES.items():
        r = backend.post("/predict", body.encode("latin-1") if name == "not UTF-8" else body.encode())
        try:
            _assert_client_error(r)
            assert 400 <= r.status_code < 500
        except AssertionError as exc:
            failures[name] = str(exc)[:200]
    assert not failures, failures
    assert backend.post("/predict", _predict()).status_code == 200, "the server keeps serving"


def test_no_webhook_payload_ends_in_a_500(backend):
    failures = {}
    for name, body in WEBHOOK_BODIES.items():
        r = backend.post("/webhook", body.encode())
        try:
            _assert_client_error(r)
        except AssertionError as exc:
            failures[name] = str(exc)[:200]
    assert not failures, failures
    assert backend.post("/webhook", _webhook()).json()["status"] == "stored", "the server keeps serving"


def test_a_lead_time_too_large_for_a_float_is_noted_not_a_500(backend):
    """JSON integers have no size limit; float() refuses one past 1.8e308 (OverflowError)."""
    for number in (BIG_INT, "-" + BIG_INT, "1e308", "-1"):
        body = json.dumps(_webhook()).replace('"completed_by": 1', '"completed_by": 1, "lead_time": ' + number)
        r = backend.post("/webhook", body.encode())
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text[:300]
        answer = r.json()
        assert answer["status"] == "stored", answer
        if number != "1e308":
            assert any("lead_time" in note and "not stored" in note and len(note) < 200 for note in answer["notes"])


def test_setup_and_train_with_extreme_values(backend):
    for path, body in [("/setup", '{"project": ' + HUGE_INT + "}"), ("/setup", '{"schema": ' + "[" * 4000 + "]" * 4000 + "}"),
                       ("/setup", '{"project": {"id": [1, 2]}, "schema": 1e999}'),
                       ("/train", '{"project": ' + HUGE_INT + "}"), ("/train", '{"project": [[1]]}')]:
        r = backend.post(path, body.encode())
        _assert_client_error(r)
        assert r.status_code >= 400


class _BuggyPredictor(FakePredictor):
    def predict(self, image, clicks, *, sis=True, refine=True):
        raise RuntimeError("a server bug with internals: /secret/path")


def test_a_server_bug_is_a_json_500_without_internals(tmp_path, caplog):
    config = BackendConfig(data_dir=str(tmp_path / "data"), watch_promoted_s=0, finetune_steps=0)
    app = create_app(config, predictor=_BuggyPredictor(), store=open_store(config.data_dir))
    with LiveBackend(app) as live:
        r = live.post("/predict", _predict())
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/json"), r.text
        assert "detail" in r.json() and "secret" not in r.text and "Traceback" not in r.text
        assert live.post("/predict", _predict()).status_code == 500
        assert httpx.get(live.url + "/health", timeout=10).status_code == 200
    assert any("RuntimeError" in rec.getMessage() or rec.exc_info for rec in caplog.records)
