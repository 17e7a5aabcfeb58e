"""A real Label Studio 1.23.2 talks to our backend: connect, smart click, store the annotation."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.e2e.label_studio_server import LS_BIN, LabelStudio
from tests.live_servers import BackendServer
from tests.e2e.scenes import check_covers_object, ellipse_scene

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not LS_BIN.exists():
        pytest.skip(f"Label Studio is not installed at {LS_BIN} (scripts/install_label_studio.sh)")
    from backend.app import create_app
    from backend.config import BackendConfig
    from model.corrections import open_store

    work = tmp_path_factory.mktemp("ls")
    ls = LabelStudio(work).start()
    config = BackendConfig(data_dir=str(work / "backend-data"), label_studio_url=ls.url,
                           label_studio_api_key=ls.token, watch_promoted_s=0, finetune_steps=0)
    store = open_store(config.data_dir)
    backend = BackendServer(create_app(config, store=store)).start()
    yield ls, backend, store
    backend.stop()
    ls.stop()


def test_smart_click_gives_the_object_and_submission_is_stored(stack):
    from label_studio_sdk.converter import brush

    ls, backend, store = stack
    config_xml = open("backend/label_config.xml", encoding="utf-8").read()
    project = ls.api("POST", "/api/projects", json={"title": "e2e", "label_config": config_xml}).json()
    ml = ls.api("POST", "/api/ml", json={"url": backend.url, "project": project["id"], "is_interactive": True,
                                         "title": "fcanet"})
    assert ml.status_code in (200, 201), ml.text
    ml_id = ml.json()["id"]

    image, truth = ellipse_scene()
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    up = ls.api("POST", f"/api/projects/{project['id']}/import", files={"file": ("scene.png", buf.getvalue(), "image/png")})
    assert up.status_code in (200, 201), up.text
    task = ls.api("GET", f"/api/projects/{project['id']}/tasks").json()
    task = task[0] if isinstance(task, list) else task["tasks"][0]
    h, w = truth.shape
    keypoint = {"original_width": w, "original_height": h, "image_rotation": 0,
                "value": {"x": 50.0, "y": 50.0, "width": 0.5, "keypointlabels": ["Object"]},
                "is_positive": True, "id": "kp1", "from_name": "click", "to_name": "image",
                "type": "keypointlabels", "origin": "manual"}
    r = ls.api("POST", f"/api/ml/{ml_id}/interactive-annotating",
               json={"task": task["id"], "context": {"result": [keypoint]}})
    assert r.status_code == 200, r.text
    results = r.json()["data"]["result"]
    brush_item = next(x for x in results if x["type"] == "brushlabels")
    assert brush_item["value"]["brushlabels"] == ["Object"]
    mask = brush.decode_rle(brush_item["value"]["rle"]).reshape(h, w, 4)[:, :, 3] > 127

    ann = ls.api("POST", f"/api/tasks/{task['id']}/annotations", json={"result": [keypoint, brush_item]})
    assert ann.status_code in (200, 201), ann.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and store.count() == 0:
        time.sleep(0.5)
    records = store.list()
    assert len(records) == 1 and records[0].source == "label_studio"
    assert records[0].annotation_id == str(ann.json()["id"])
    assert store.load_mask(records[0]).shape == (h, w)
    # What Label Studio shows is exactly what the predictor gives for that click (the whole path
    # percent -> pixels -> model -> RLE -> Label Studio -> decode loses nothing) ...
    from model import Click, Predictor

    direct = Predictor.from_checkpoint().predict(image, [Click(w * 0.5, h * 0.5)]).mask
    same = (mask & direct).sum() / max(1, (mask | direct).sum())
    assert same >= 0.99, f"the brush differs from the predictor's own mask (IoU {same:.3f})"
    # ... and the model finds the object.
    check_covers_object(mask, truth, "the backend's brush")


def test_interactive_requests_identify_the_labeler_by_their_drafts(stack):
    """Label Studio sends the requesting user's own drafts with the task: the backend reads the
    labeler from them (none before the first draft), which keys the click memory."""
    from backend.click_memory import labeler_of

    ls, backend, _ = stack
    config_xml = open("backend/label_config.xml", encoding="utf-8").read()
    project = ls.api("POST", "/api/projects", json={"title": "labelers", "label_config": config_xml}).json()
    ml = ls.api("POST", "/api/ml", json={"url": backend.url, "project": project["id"], "is_interactive": True,
                                         "title": "fcanet"})
    assert ml.status_code in (200, 201), ml.text
    image, _ = ellipse_scene()
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    up = ls.api("POST", f"/api/projects/{project['id']}/import", files={"file": ("s.png", buf.getvalue(), "image/png")})
    assert up.status_code in (200, 201), up.text
    task = ls.api("GET", f"/api/projects/{project['id']}/tasks").json()
    task = task[0] if isinstance(task, list) else task["tasks"][0]
    h, w = image.shape[:2]
    keypoint = {"original_width": w, "original_height": h, "image_rotation": 0,
                "value": {"x": 50.0, "y": 50.0, "width": 0.5, "keypointlabels": ["Object"]},
                "is_positive": True, "id": "kp1", "from_name": "click", "to_name": "image",
                "type": "keypointlabels", "origin": "manual"}

    model = backend.server.config.app.state.model
    seen = []
    original = model.predict

    def spy(tasks, *args, **kwargs):
        seen.append(labeler_of(tasks[0]) if isinstance(tasks, list) and tasks else "no task")
        return original(tasks, *args, **kwargs)

    model.predict = spy
    try:
        def click():
            r = ls.api("POST", f"/api/ml/{ml.json()['id']}/interactive-annotating",
                       json={"task": task["id"], "context": {"result": [keypoint]}})
            assert r.status_code == 200 and "data" in r.json(), r.text

        click()  # no draft yet: not identified
        draft = ls.api("POST", f"/api/tasks/{task['id']}/drafts", json={"result": [keypoint], "lead_time": 1.0})
        assert draft.status_code in (200, 201), draft.text
        click()
    finally:
        del model.predict
    assert seen == [None, ls.email]
