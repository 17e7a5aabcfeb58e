"""Brush masks are bounded before they are decoded; nothing oversized enters the store; the
COCO export survives records it cannot read."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from label_studio_sdk.converter import brush as ls_brush
from pycocotools.coco import COCO

from backend.app import create_app
from backend.config import BackendConfig
from backend.label_config import shipped_label_config
from backend_fixtures import FakePredictor, keypoint, png_bytes, sample_image
from live_servers import LiveBackend
from model import Click, image_io
from model.cli import main
from model.corrections import StoreError, open_store

IMAGE = "data:image/png;base64," + base64.b64encode(png_bytes(sample_image())).decode()  # 80 x 60


def _brush(width: int, height: int, rle: list[int], brush_id: str = "b1") -> dict:
    return {"id": brush_id, "from_name": "mask", "to_name": "image", "type": "brushlabels",
            "original_width": width, "original_height": height, "image_rotation": 0,
            "value": {"format": "rle", "rle": rle, "brushlabels": ["Object"]}}


def _header_only_rle(width: int, height: int) -> list[int]:
    """A few bytes whose header announces width * height RGBA pixels (what the decoder allocates)."""
    return list((width * height * 4).to_bytes(4, "big")) + [0] * 8


def _real_rle(width: int, height: int) -> list[int]:
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2, : width // 2] = 255
    return ls_brush.mask2rle(mask)


def _event(*brushes, annotation_id=11):
    return {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": shipped_label_config()},
            "annotation": {"id": annotation_id, "result": list(brushes), "completed_by": 1},
            "task": {"id": 7, "data": {"image": IMAGE}, "project": 1}}


@pytest.fixture
def live(tmp_path, monkeypatch):
    """(backend, store, decode calls): the RLE decoder is replaced by a recorder that refuses
    to allocate, so a test sees whether anything was decoded."""
    decoded = []
    real_decode = ls_brush.decode_rle

    def recording_decode(rle, *args, **kwargs):
        declared = int.from_bytes(bytes(rle[:4]), "big")
        decoded.append(declared // 4)
        if declared > 4 * 10_000_000:
            raise MemoryError(f"the test refuses to allocate {declared} bytes")
        return real_decode(rle, *args, **kwargs)

    monkeypatch.setattr(ls_brush, "decode_rle", recording_decode)
    config = BackendConfig(data_dir=str(tmp_path / "data"), watch_promoted_s=0, finetune_steps=0)
    store = open_store(config.data_dir)
    with LiveBackend(create_app(config, predictor=FakePredictor(), store=store)) as backend:
        yield backend, store, decoded


def test_a_brush_over_the_image_pixel_limit_is_refused_before_decoding(live):
    backend, store, decoded = live
    for width, height in ((20_000, 20_000), (100_000_000, 2), (1, 100_000_001)):
        r = backend.post("/webhook", _event(_brush(width, height, _header_only_rle(width, height))))
        assert 400 <= r.status_code < 500 and "limit" in r.json()["detail"], r.text
    assert decoded == [] and store.count() == 0


def test_many_brushes_together_are_bounded_before_decoding(live):
    backend, store, decoded = live
    side = 9_000  # 81 megapixels each: under the image limit alone, 405 megapixels together
    brushes = [_brush(side, side, _header_only_rle(side, side), f"b{i}") for i in range(5)]
    r = backend.post("/webhook", _event(*brushes))
    assert r.status_code == 413 and "FCANET_MAX_ANNOTATION_PIXELS" in r.json()["detail"], r.text
    # mixed sizes in one annotation are refused before decoding too
    r = backend.post("/webhook", _event(_brush(80, 60, _real_rle(80, 60)),
                                        _brush(side, side, _header_only_rle(side, side), "b2")))
    assert 400 <= r.status_code < 500, r.text
    assert decoded == [] and store.count() == 0


def test_brushes_larger_than_the_known_task_image_are_refused(live):
    backend, store, decoded = live
    predict = {"tasks": [{"id": 7, "data": {"image": IMAGE}}], "project": "1", "label_config": shipped_label_config(),
               "params": {"context": {"result": [keypoint(50, 50)]}}}
    assert backend.post("/predict", predict).status_code == 200  # the 80 x 60 image is now known
    r = backend.post("/webhook", _event(_brush(800, 600, _real_rle(800, 600))))
    assert 400 <= r.status_code < 500 and "larger than the task's image" in r.json()["detail"], r.text
    assert decoded == [] and store.count() == 0
    r = backend.post("/webhook", _event(_brush(80, 60, _real_rle(80, 60))))
    assert r.status_code == 200 and r.json()["status"] == "stored", r.text


def test_concurrent_webhooks_share_one_decode_budget(tmp_path, monkeypatch):
    """Each annotation is within FCANET_MAX_ANNOTATION_PIXELS alone; many sent at once must not
    decode together (N small webhooks, N times the memory): they wait for one shared budget.
    Real concurrent HTTP; a mask counts from its decoding until the store call that writes it returns."""
    width, height, lanes = 80, 60, 8
    lock = threading.Lock()
    holding: dict[int, int] = {}  # request thread -> decoded pixels it holds
    peak = [0]
    real_decode = ls_brush.decode_rle

    def recording_decode(rle, *args, **kwargs):
        with lock:
            me = threading.get_ident()
            holding[me] = holding.get(me, 0) + int.from_bytes(bytes(rle[:4]), "big") // 4
            peak[0] = max(peak[0], sum(holding.values()))
        time.sleep(0.05)  # a decode takes time: room for the others to start theirs
        return real_decode(rle, *args, **kwargs)

    monkeypatch.setattr(ls_brush, "decode_rle", recording_decode)
    config = BackendConfig(data_dir=str(tmp_path / "data"), watch_promoted_s=0, finetune_steps=0,
                           max_annotation_pixels=2 * width * height)
    store = open_store(config.data_dir)
    real_add = store.add_annotation

    def add_annotation(**kwargs):
        try:
            return real_add(**kwargs)
        finally:
            with lock:
                holding.pop(threading.get_ident(), None)

    store.add_annotation = add_annotation
    events = [_event(_brush(width, height, _real_rle(width, height), f"a{n}"),
                     _brush(width, height, _real_rle(width, height), f"b{n}"), annotation_id=100 + n)
              for n in range(lanes)]
    start = threading.Barrier(lanes)
    with LiveBackend(create_app(config, predictor=FakePredictor(), store=store)) as backend:
        def send(event):
            start.wait(timeout=30)
            return backend.post("/webhook", event, timeout=60)

        with ThreadPoolExecutor(lanes) as pool:
            answers = list(pool.map(send, events))
    assert all(r.status_code == 200 and r.json()["status"] == "stored" for r in answers), [r.text for r in answers]
    assert store.count() == 2 * lanes
    assert peak[0] <= config.max_annotation_pixels, f"{peak[0]} pixels decoded at once"


def test_the_store_refuses_masks_over_the_image_pixel_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100)
    store = open_store(tmp_path / "data")
    with pytest.raises(StoreError, match="limit"):
        store.add(source="gradio", image=None, image_ref="/data/upload/1/a.png", clicks=[],
                  mask=np.ones((10, 11), bool))
    assert store.count() == 0
    store.add(source="gradio", image=None, image_ref="/data/upload/1/a.png", clicks=[], mask=np.ones((10, 10), bool))
    assert store.count() == 1


def test_export_skips_and_reports_records_it_cannot_read(tmp_path, capsys):
    data = tmp_path / "data"
    store = open_store(data)
    ids = []
    for i in range(3):
        mask = np.zeros((20, 20), bool)
        mask[i: i + 5, 2:9] = True  # different masks: different files
        ids.append(store.add(source="gradio", image=None, image_ref=f"/data/upload/1/{i}.png",
                             clicks=[Click(4, i + 2)], mask=mask))
    (store.files_dir / store.get(ids[1]).mask_path).unlink()  # a lost mask file
    with sqlite3.connect(data / "corrections.sqlite3") as db:  # a record claiming a huge mask
        db.execute("UPDATE corrections SET width = 200000, height = 100000 WHERE id = ?", (ids[2],))
    out = tmp_path / "coco.json"
    assert main(["corrections", "export", "--store", str(data), str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 annotation(s)" in captured.out
    assert ids[1] in captured.err and ids[2] in captured.err and "skipped 2" in captured.err
    coco = COCO(str(out))
    assert [a["record_id"] for a in json.loads(out.read_text())["annotations"]] == [ids[0]]
    assert len(coco.getImgIds()) == 1
