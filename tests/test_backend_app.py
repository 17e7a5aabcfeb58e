"""Every route of the backend app through FastAPI's test client, and each kind of bad input."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from label_studio_sdk.converter import brush

from backend.app import create_app
from backend.config import BackendConfig
from backend.images import ImageFetcher
from backend.label_config import shipped_label_config
from backend_fixtures import LS_URL, TOKEN, FakeLabelStudio, FakePredictor, keypoint, png_bytes, sample_image
from model import GraphCutRefineConfig, Predictor
from model.corrections import open_store

IMAGE_PATH = "/data/upload/1/abc-object.png"


@pytest.fixture
def ls():
    return FakeLabelStudio({IMAGE_PATH: png_bytes(sample_image()), "/data/upload/1/text.txt": b"hello, not an image"})


@pytest.fixture
def setup(tmp_path, ls):
    config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=LS_URL, label_studio_api_key=TOKEN,
                           watch_promoted_s=0, finetune_steps=0)
    store = open_store(config.data_dir)
    predictor = FakePredictor()
    app = create_app(config, predictor=predictor, store=store, fetcher=ImageFetcher(config, transport=ls.transport))
    with TestClient(app) as client:
        yield client, predictor, store, app


def _predict_body(context_result, image=IMAGE_PATH, task_id=7, label_config=None):
    return {"tasks": [{"id": task_id, "data": {"image": image}}], "project": "1.1712345678",
            "label_config": label_config or shipped_label_config(),
            "params": {"login": None, "password": None, "context": {"result": context_result}}}


def _decode(result) -> np.ndarray:
    h, w = result["original_height"], result["original_width"]
    return brush.decode_rle(result["value"]["rle"]).reshape(h, w, 4)[:, :, 3] > 0


# ------------------------------------------------------------------------- /health, /setup, /versions
def test_health_reports_model_and_training(setup):
    client, *_ = setup
    body = client.get("/health").json()
    assert body["status"] == "UP" and body["model_class"] == "FcanetModel"
    assert body["model_version"] == "fake-1"
    assert body["training"]["state"] == "idle"
    assert client.get("/").json()["status"] == "UP"
    assert client.get("/versions").json()["versions"] == ["fake-1"]


def test_setup_returns_model_version_and_checks_the_config(setup):
    client, *_ = setup
    r = client.post("/setup", json={"project": "3.1712345678", "schema": shipped_label_config(),
                                    "hostname": "http://localhost:8080", "access_token": "x", "extra_params": None})
    assert r.status_code == 200 and r.json() == {"model_version": "fake-1"}
    r = client.post("/setup", json={"project": "3", "schema": "<View><Image name='i' value='$image'/></View>"})
    assert r.status_code == 422 and "BrushLabels" in r.json()["detail"]
    r = client.post("/setup", json={"project": "3", "schema": "<View><Image"})
    assert r.status_code == 422 and "cannot be parsed" in r.json()["detail"]


# ------------------------------------------------------------------------- /predict
def test_predict_returns_a_brush_with_label_version_and_score(setup, ls):
    client, predictor, *_ = setup
    r = client.post("/predict", json=_predict_body([keypoint(50, 50)]))
    assert r.status_code == 200, r.text
    [prediction] = r.json()["results"]
    assert prediction["model_version"] == "fake-1" and 0 < prediction["score"] <= 1
    [result] = prediction["result"]
    assert result["type"] == "brushlabels" and result["from_name"] == "mask" and result["to_name"] == "image"
    assert result["value"]["brushlabels"] == ["Object"]
    assert (result["original_width"], result["original_height"]) == (80, 60)
    mask = _decode(result)
    assert mask[30, 40] and not mask[0, 0]
    # percent * original size -> pixels
    assert predictor.calls[-1][0].x == pytest.approx(40) and predictor.calls[-1][0].y == pytest.approx(30)
    assert ls.requests[0].headers["authorization"] == f"Token {TOKEN}"


def test_predict_reads_clicks_in_order_with_their_sign(setup):
    client, predictor, *_ = setup
    clicks = [keypoint(25, 50, kp_id="a"), keypoint(90, 10, positive=False, kp_id="b"), keypoint(60, 50, kp_id="c")]
    assert client.post("/predict", json=_predict_body(clicks)).status_code == 200
    got = predictor.calls[-1]
    assert [(c.x, c.y, c.positive) for c in got] == [(20, 30, True), (72, 6, False), (48, 30, True)]


def test_image_is_downloaded_once_per_task(setup, ls):
    client, *_ = setup
    for i in range(4):
        assert client.post("/predict", json=_predict_body([keypoint(10 + i, 50, kp_id=f"k{i}")])).status_code == 200
    assert len(ls.requests) == 1


def test_clicks_grouped_by_label_give_one_brush_per_label(setup):
    client, predictor, *_ = setup
    config = shipped_label_config().replace(
        '<Label value="Object" background="#ff6600"/>',
        '<Label value="Object" background="#ff6600"/><Label value="Hole" background="#0066ff"/>')
    body = _predict_body([keypoint(25, 50, kp_id="a"), keypoint(75, 50, label="Hole", kp_id="b"),
                          keypoint(30, 50, positive=False, kp_id="c")], label_config=config)
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"][0]["result"]
    assert [x["value"]["brushlabels"] for x in results] == [["Object"], ["Hole"]]
    assert len(predictor.calls[-2]) == 2 and len(predictor.calls[-1]) == 1  # Object: a, c ; Hole: b


def test_plain_pre_annotation_request_gives_no_result(setup):
    client, predictor, *_ = setup
    for params in ({}, {"context": None}, {"context": {}}, {"context": {"result": []}}):
        r = client.post("/predict", json={"tasks": [{"id": 1, "data": {"image": IMAGE_PATH}}], "params": params})
        assert r.status_code == 200 and r.json()["results"] == [[]]
    assert predictor.calls == []


def test_later_clicks_sent_alone_keep_the_first_click_as_anchor(setup):
    """Label Studio with auto-accept on sends only the newest keypoint: the backend remembers."""
    client, predictor, *_ = setup
    first = client.post("/predict", json=_predict_body([keypoint(50, 50, kp_id="a")])).json()
    second = client.post("/predict", json=_predict_body([keypoint(52, 50, positive=False, kp_id="b")])).json()
    assert [(c.x, c.positive) for c in predictor.calls[-1]] == [(40, True), (41.6, False)]
    assert second["results"][0]["result"][0]["id"] == first["results"][0]["result"][0]["id"], \
        "one object keeps one brush id, so Label Studio updates the same brush"


@pytest.mark.parametrize("body, status, message", [
    ("{not json", 400, "malformed JSON"),
    ("[1, 2]", 400, "JSON object"),
    ("", 400, "empty"),
    (json.dumps({"params": {}}), 400, "tasks"),
    (json.dumps({"tasks": "x", "params": {"context": {"result": [keypoint(5, 5)]}}}), 400, "tasks must be a list"),
    (json.dumps({"tasks": [{"id": 1, "data": {"image": IMAGE_PATH}}], "params": "x"}), 400, "params"),
    (json.dumps({"tasks": [{"id": 1}], "params": {"context": {"result": [keypoint(5, 5)]}}}), 400, "'data'"),
    (json.dumps({"tasks": [{"id": 1, "data": {"img": "x"}}], "params": {"context": {"result": [keypoint(5, 5)]}}}),
     400, "no 'image' field"),
    (json.dumps({"tasks": [{"id": 1, "data": {"image": IMAGE_PATH}}],
                 "params": {"context": {"result": [{"type": "keypointlabels", "value": {"x": "a"}}]}}}),
     400, "numeric"),
    (json.dumps({"tasks": [{"id": 1, "data": {"image": IMAGE_PATH}}],
                 "params": {"context": {"result": [{"type": "rectanglelabels", "value": {}}]}}}),
     422, "no keypoints"),
    (json.dumps({"tasks": [{"id": 1, "data": {"image": IMAGE_PATH}}, {"id": 2, "data": {}}],
                 "params": {"context": {"result": [keypoint(5, 5)]}}}), 422, "exactly one task"),
])
def test_malformed_predict_requests(setup, body, status, message):
    client, *_ = setup
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("context, image, status, message", [
    ([keypoint(50, 50, label="Cat")], IMAGE_PATH, 422, "unknown label 'Cat'"),
    ([keypoint(150, 50)], IMAGE_PATH, 422, "outside the image"),
    ([keypoint(50, -3)], IMAGE_PATH, 422, "outside the image"),
    ([keypoint(50, 50, positive=False)], IMAGE_PATH, 422, "first click must be positive"),
    ([keypoint(50, 50)], "/data/upload/1/missing.png", 424, "HTTP 404"),
    ([keypoint(50, 50)], "/data/upload/1/text.txt", 422, "not a usable image"),
    ([keypoint(50, 50)], "http://evil.example.com/a.png", 400, "not allowed"),
    ([keypoint(50, 50)], "ftp://ls.test/a.png", 400, "only http(s)"),
    ([keypoint(50, 50)], "s3://bucket/a.png", 400, "only http(s)"),
    ([keypoint(50, 50)], "data:image/png;base64,AAAA", 422, "not a usable image"),
    ([{**keypoint(50, 50), "image_rotation": 90}], IMAGE_PATH, 422, "rotated"),
])
def test_bad_clicks_labels_and_images(setup, context, image, status, message):
    client, predictor, *_ = setup
    r = client.post("/predict", json=_predict_body(context, image=image))
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert client.post("/predict", json=_predict_body([keypoint(50, 50, kp_id="ok")])).status_code == 200


def test_unreachable_image_host(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path), allowed_image_hosts=("127.0.0.1",), image_timeout_s=2,
                           watch_promoted_s=0)
    from backend_fixtures import FakePredictor as FP

    from tests.net_utils import free_port

    app = create_app(config, predictor=FP(), store=open_store(tmp_path / "s"))
    with TestClient(app) as client:
        r = client.post("/predict", json=_predict_body([keypoint(50, 50)],
                                                         image=f"http://127.0.0.1:{free_port()}/a.png"))
        assert r.status_code == 502 and "cannot fetch the image" in r.json()["detail"]


def test_label_studio_path_without_label_studio_url(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path), watch_promoted_s=0)
    app = create_app(config, predictor=FakePredictor(), store=open_store(tmp_path / "s"))
    with TestClient(app) as client:
        r = client.post("/predict", json=_predict_body([keypoint(50, 50)]))
        assert r.status_code == 400 and "LABEL_STUDIO_URL" in r.json()["detail"]


def test_real_tiny_predictor_end_to_end(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path), watch_promoted_s=0)
    uri = "data:image/png;base64," + base64.b64encode(png_bytes(sample_image())).decode()
    app = create_app(config, predictor=Predictor.for_tests(), store=open_store(tmp_path / "s"))
    with TestClient(app) as client:
        r = client.post("/predict", json=_predict_body([keypoint(50, 50), keypoint(5, 5, positive=False)], image=uri))
        assert r.status_code == 200, r.text
        [prediction] = r.json()["results"]
        assert prediction["model_version"] == "tiny-test-0"
        assert _decode(prediction["result"][0]).shape == (60, 80)


# ------------------------------------------------------------------------- /webhook
def _annotation_event(action="ANNOTATION_CREATED", annotation_id=11, mask=None, extra_results=(), project=1):
    if mask is None:
        mask = np.zeros((60, 80), bool)
        mask[20:40, 30:50] = True
    result = [{"id": "brush1", "from_name": "mask", "to_name": "image", "type": "brushlabels",
               "original_width": 80, "original_height": 60, "image_rotation": 0,
               "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                         "brushlabels": ["Object"]}}, *extra_results]
    return {"action": action,
            "project": {"id": project, "label_config": shipped_label_config()},
            "annotation": {"id": annotation_id, "result": result, "task": 7, "completed_by": 1,
                           "was_cancelled": False},
            "task": {"id": 7, "data": {"image": IMAGE_PATH}, "project": project}}


def test_webhook_stores_mask_clicks_and_image(setup):
    client, _, store, _ = setup
    event = _annotation_event(extra_results=[keypoint(50, 50, kp_id="k1"), keypoint(10, 10, False, kp_id="k2")])
    r = client.post("/webhook", json=event)
    assert r.status_code == 200 and r.json()["status"] == "stored", r.text
    [record] = store.list()
    assert (record.source, record.project, record.task_id, record.annotation_id) == ("label_studio", "1", "7", "11")
    assert record.image_ref == IMAGE_PATH and record.author == "1" and record.labels == ("Object",)
    assert [(c.x, c.y, c.positive) for c in record.clicks] == [(40, 30, True), (8, 6, False)]
    assert store.load_mask(record)[30, 40] and store.load_mask(record).sum() == 400
    # the image was not cached yet: it is fetched after the answer and attached
    assert record.image_path is not None or store.get(record.id).image_path is not None
    assert store.load_image(store.get(record.id)).shape == (60, 80, 3)


def test_webhook_update_replaces_and_repeats_do_not_duplicate(setup):
    client, _, store, _ = setup
    for _ in range(2):
        assert client.post("/webhook", json=_annotation_event()).status_code == 200
    new_mask = np.zeros((60, 80), bool)
    new_mask[0:10, 0:10] = True
    assert client.post("/webhook", json=_annotation_event("ANNOTATION_UPDATED", mask=new_mask)).status_code == 200
    [record] = store.list()
    assert store.load_mask(record).sum() == 100


def test_webhook_uses_the_clicks_behind_a_predicted_brush(setup):
    """Accepted suggestions lose their keypoints; the brush id leads back to the clicks."""
    client, _, store, _ = setup
    client.post("/predict", json=_predict_body([keypoint(50, 50, kp_id="a")]))
    r = client.post("/predict", json=_predict_body([keypoint(50, 50, kp_id="a"), keypoint(5, 5, False, kp_id="b")]))
    brush_result = r.json()["results"][0]["result"][0]
    event = _annotation_event()
    event["annotation"]["result"] = [brush_result]
    assert client.post("/webhook", json=event).status_code == 200
    [record] = store.list()
    assert [(c.x, c.y, c.positive) for c in record.clicks] == [(40, 30, True), (4, 3, False)]
    assert record.image_path is not None, "the image was cached by the predictions, so it is stored at once"


def test_webhook_answers_fast(setup):
    import time

    client, *_ = setup
    start = time.perf_counter()
    assert client.post("/webhook", json=_annotation_event(annotation_id=99)).status_code == 200
    assert time.perf_counter() - start < 1.0


def test_start_training_is_recorded(setup):
    client, _, store, _ = setup
    r = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 5, "title": "p"}})
    assert r.status_code == 200 and r.json()["status"] == "training requested"
    [request] = store.list_training_requests()
    assert request["project"] == "5"
    assert client.get("/health").json()["training"]["state"] == "requested"
    assert client.post("/train", json={"project": "5.123"}).status_code == 200
    assert len(store.list_training_requests()) == 2


class _CountingLauncher:
    def __init__(self):
        self.requests = []

    def start(self, request):
        self.requests.append(request)
        return f"job-{len(self.requests)}"

    def status(self):
        return {"state": "idle"}


def test_every_n_new_corrections_start_a_job_from_the_served_model(tmp_path, ls):
    config = BackendConfig(data_dir=str(tmp_path / "data"), label_studio_url=LS_URL, label_studio_api_key=TOKEN,
                           watch_promoted_s=0, train_every=2)
    launcher = _CountingLauncher()
    predictor = FakePredictor()
    predictor.checkpoint_path = "/models/served.safetensors"
    app = create_app(config, predictor=predictor, store=open_store(config.data_dir), launcher=launcher,
                     fetcher=ImageFetcher(config, transport=ls.transport))
    with TestClient(app) as client:
        first = client.post("/webhook", json=_annotation_event(annotation_id=1)).json()
        assert "training_job" not in first and launcher.requests == []
        # an update of the same annotation is not a new correction
        client.post("/webhook", json=_annotation_event("ANNOTATION_UPDATED", annotation_id=1))
        assert launcher.requests == []
        second = client.post("/webhook", json=_annotation_event(annotation_id=2)).json()
        assert second["training_job"] == "job-1"
        [request] = launcher.requests
        assert request["checkpoint"] == "/models/served.safetensors" and request["model_version"] == "fake-1"
        client.post("/webhook", json=_annotation_event(annotation_id=3))
        assert len(launcher.requests) == 1  # the count restarts after each job
        client.post("/webhook", json=_annotation_event(annotation_id=4))
        assert len(launcher.requests) == 2


def test_train_every_comes_from_flag_or_environment():
    from backend.cli import config_from_args
    import argparse

    assert BackendConfig.from_env({"FCANET_TRAIN_EVERY": "50"}).train_every == 50
    with pytest.raises(ValueError, match="FCANET_TRAIN_EVERY"):
        BackendConfig.from_env({"FCANET_TRAIN_EVERY": "many"})
    with pytest.raises(ValueError, match="train_every"):
        BackendConfig(train_every=-1)
    parser = argparse.ArgumentParser()
    from backend.cli import register

    register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--train-every", "7"])
    assert config_from_args(args, env={}).train_every == 7


def test_output_mode_comes_from_flag_or_environment_and_reaches_the_predictor(tmp_path, monkeypatch):
    import argparse

    from backend import app as backend_app
    from backend.cli import config_from_args, register
    from model.predictor_flags import options_for_mode

    default = BackendConfig().predictor_options
    expected = {k: v for k, v in options_for_mode(None).items() if v is not None}
    assert default == {**expected, "device": "cpu"} and default["band_cut"]
    config = BackendConfig.from_env({"FCANET_MODE": "network"})
    assert config.predictor_options["edge_refine"] is False and config.predictor_options["band_cut"] is False
    with pytest.raises(ValueError, match="FCANET_MODE must be one of"):
        BackendConfig.from_env({"FCANET_MODE": "maybe"})
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    # Every output flag of predict / evaluate is a serve flag too, and a flag wins over the environment.
    args = parser.parse_args(["serve", "--mode", "grabcut", "--graphcut-cut-side", "480"])
    options = config_from_args(args, env={"FCANET_MODE": "network"}).predictor_options
    assert options["graphcut_refine"] == GraphCutRefineConfig(full_resolution=True, cut_side=480)
    assert options["band_cut"] is False and options["edge_refine"]
    args = parser.parse_args(["serve"])
    assert config_from_args(args, env={"FCANET_MODE": "edge"}).predictor_options["band_cut"] is False
    args = parser.parse_args(["serve", "--no-band-cut", "--no-edge-refine"])
    options = config_from_args(args, env={}).predictor_options
    assert options["band_cut"] is False and options["edge_refine"] is False
    seen = {}
    monkeypatch.setattr(backend_app.Predictor, "from_checkpoint",
                        classmethod(lambda cls, path, **kwargs: seen.update(kwargs) or Predictor.for_tests()))
    store = open_store(str(tmp_path / "store"))
    backend_app.load_predictor(config, store)
    assert seen == config.predictor_options


def test_other_actions_are_ignored_and_deletions_remove_records(setup):
    client, _, store, _ = setup
    r = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 1}})
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    client.post("/webhook", json=_annotation_event(annotation_id=21))
    assert store.count() == 1
    r = client.post("/webhook", json={"action": "ANNOTATIONS_DELETED", "project": {"id": 1},
                                      "annotations": [{"id": 21}]})
    assert r.status_code == 200 and r.json()["records"] == 1 and store.count() == 0


def test_annotations_without_brushes_are_ignored(setup):
    client, _, store, _ = setup
    event = _annotation_event()
    event["annotation"]["result"] = [keypoint(5, 5)]
    assert client.post("/webhook", json=event).json()["status"] == "ignored"
    event["annotation"]["was_cancelled"] = True
    assert client.post("/webhook", json=event).json()["status"] == "ignored"
    empty = _annotation_event(mask=np.zeros((60, 80), bool))
    assert client.post("/webhook", json=empty).json()["status"] == "ignored"
    assert store.count() == 0


def _broken(event_change):
    event = _annotation_event()
    event_change(event)
    return event


@pytest.mark.parametrize("event, status, message", [
    ({"project": {"id": 1}}, 400, "action"),
    (_broken(lambda e: e.pop("annotation")), 400, "annotation"),
    (_broken(lambda e: e.pop("task")), 400, "task"),
    (_broken(lambda e: e["annotation"].pop("id")), 400, "no 'id'"),
    (_broken(lambda e: e["annotation"].update(result="x")), 400, "must be a list"),
    (_broken(lambda e: e["annotation"]["result"][0]["value"].update(rle=[1, 2, 3])), 400, "RLE"),
    (_broken(lambda e: e["annotation"]["result"][0]["value"].update(rle="abc")), 400, "RLE"),
    (_broken(lambda e: e["annotation"]["result"][0].update(original_width=81)), 400, "RLE is for"),
    (_broken(lambda e: e["annotation"]["result"][0].pop("original_height")), 400, "original_height"),
    (_broken(lambda e: e["annotation"]["result"][0]["value"].update(brushlabels=["Cat"])), 422, "unknown label"),
    (_broken(lambda e: e["task"].update(data={})), 400, "image reference"),
    ({"action": "ANNOTATIONS_DELETED", "project": {"id": 1}}, 400, "annotations"),
])
def test_malformed_webhooks(setup, event, status, message):
    client, _, store, _ = setup
    r = client.post("/webhook", json=event)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert store.count() == 0
    assert client.get("/health").status_code == 200


def test_webhook_store_outage_is_503(setup, monkeypatch):
    from model.corrections import StoreUnavailableError

    client, _, store, _ = setup

    def down(**kwargs):
        raise StoreUnavailableError("database is locked")

    monkeypatch.setattr(store, "add_annotation", down)
    r = client.post("/webhook", json=_annotation_event())
    assert r.status_code == 503 and "unavailable" in r.json()["detail"]


# ------------------------------------------------------------------------- basic auth, body size
def test_basic_auth_when_configured(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path), basic_auth_user="ls", basic_auth_pass="secret", watch_promoted_s=0)
    app = create_app(config, predictor=FakePredictor(), store=open_store(tmp_path / "s"))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200  # health stays open for probes
        assert client.post("/setup", json={}).status_code == 401
        assert client.post("/setup", json={}, auth=("ls", "wrong")).status_code == 401
        assert client.post("/setup", json={}, auth=("ls", "secret")).status_code == 200


def test_swapped_predictor_reports_its_version(setup):
    client, _, _, app = setup
    app.state.model.swap_predictor(FakePredictor(version="fake-2"))
    r = client.post("/predict", json=_predict_body([keypoint(50, 50)]))
    assert r.json()["results"][0]["model_version"] == "fake-2"
    assert client.get("/health").json()["model_version"] == "fake-2"


def test_start_training_launches_a_finetune_job_by_default(tmp_path):
    from model.finetune.launcher import FinetuneLauncher

    config = BackendConfig(data_dir=str(tmp_path / "data"), watch_promoted_s=0)
    app = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))
    delegate = app.state.model.launcher.delegate
    assert isinstance(delegate, FinetuneLauncher) and delegate.steps == 200
