"""Concurrent webhooks over real HTTP (uvicorn on a loopback port) against a SQLite and a
PostgreSQL store: an acknowledged correction keeps every file it names.

Mask files are shared by content, so an update that moves annotation X off a mask and a
creation that stores the same mask for annotation Z race: X's clean-up of its old mask must
never delete the file Z has just been acknowledged for. Each round, in every lane, X moves
to a fresh mask while Z (a new annotation on another task) is created with X's previous
mask, all requests released together. The store's file layer is slowed down where a writer
finds its mask already on disk (as a busy disk or a paused process would), which is the
moment the race needs; the store must be right whatever the timing.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from label_studio_sdk.converter import brush

from backend.app import create_app
from backend.config import BackendConfig
from backend.images import ImageFetcher
from backend.label_config import shipped_label_config
from backend_fixtures import LS_URL, TOKEN, FakeLabelStudio, FakePredictor, png_bytes, sample_image
from corrections_pg import start_server
from live_servers import serve
from model.corrections import open_store
from model.corrections.files import FileStore

IMAGE_PATH = "/data/upload/1/shared.png"
HEIGHT, WIDTH = 60, 80
LANES = 8
ROUNDS = 25
#: Seconds a writer pauses after finding its mask already stored (widens the race window).
DEDUP_PAUSE_S = 0.05


class _SlowWhenShared(FileStore):
    """A FileStore that pauses after a put whose mask file was already there."""

    def put(self, kind, data, suffix):
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        existed = (self.root / f"{kind}/{sha[:2]}/{sha}{suffix}").is_file()
        result = super().put(kind, data, suffix)
        if kind == "masks" and existed:
            time.sleep(DEDUP_PAUSE_S)
        return result


def _mask(lane: int, round_: int) -> np.ndarray:
    """A mask unique to (lane, round): a random blob, never empty."""
    rng = np.random.default_rng(lane * 10_000 + round_)
    mask = rng.random((HEIGHT, WIDTH)) < 0.3
    mask[HEIGHT // 2, WIDTH // 2] = True
    return mask


def _event(action: str, annotation_id: int, task_id: int, mask: np.ndarray) -> dict:
    result = [{"id": f"b{annotation_id}", "from_name": "mask", "to_name": "image", "type": "brushlabels",
               "original_width": WIDTH, "original_height": HEIGHT, "image_rotation": 0,
               "value": {"format": "rle", "rle": brush.mask2rle(mask.astype(np.uint8) * 255),
                         "brushlabels": ["Object"]}}]
    return {"action": action, "project": {"id": 1, "label_config": shipped_label_config()},
            "annotation": {"id": annotation_id, "result": result, "task": task_id, "completed_by": 1},
            "task": {"id": task_id, "data": {"image": IMAGE_PATH}, "project": 1}}


@pytest.fixture(scope="module")
def pg_server():
    server = start_server()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = open_store(tmp_path / "data")
    else:
        store = open_store(request.getfixturevalue("pg_server").new_database(), files_dir=tmp_path / "files")
    store.files = _SlowWhenShared(store.files.root)
    return store


def _check_every_record(store, expected: dict[str, np.ndarray], round_: int) -> None:
    records = store.list()
    assert {r.annotation_id for r in records} == set(expected), f"round {round_}: records differ"
    for record in records:
        path = store.files.root / record.mask_path
        assert path.is_file(), f"round {round_}: annotation {record.annotation_id} was acknowledged " \
                               f"but its mask file {record.mask_path} is gone"
        assert np.array_equal(store.load_mask(record), expected[record.annotation_id]), \
            f"round {round_}: annotation {record.annotation_id} holds the wrong mask"


def test_concurrent_update_and_create_never_lose_an_acknowledged_mask(store, tmp_path):
    config = BackendConfig(data_dir=str(tmp_path / "backend"), label_studio_url=LS_URL,
                           label_studio_api_key=TOKEN, watch_promoted_s=0, finetune_steps=0)
    ls = FakeLabelStudio({IMAGE_PATH: png_bytes(sample_image(HEIGHT, WIDTH))})
    app = create_app(config, predictor=FakePredictor(), store=store,
                     fetcher=ImageFetcher(config, transport=ls.transport))
    expected: dict[str, np.ndarray] = {}
    with serve(app) as url, httpx.Client(base_url=url, timeout=60,
                                         limits=httpx.Limits(max_connections=2 * LANES)) as client:
        def post(event):
            r = client.post("/webhook", json=event)
            assert r.status_code == 200, r.text
            return r.json()

        for lane in range(LANES):
            post(_event("ANNOTATION_CREATED", 1000 + lane, lane, _mask(lane, 0)))
            expected[str(1000 + lane)] = _mask(lane, 0)
        _check_every_record(store, expected, 0)

        with ThreadPoolExecutor(max_workers=2 * LANES) as pool:
            for round_ in range(1, ROUNDS + 1):
                start = threading.Barrier(2 * LANES)
                events = []
                for lane in range(LANES):
                    x_id, z_id = 1000 + lane, 100_000 + lane * 1000 + round_
                    events.append(_event("ANNOTATION_UPDATED", x_id, lane, _mask(lane, round_)))
                    events.append(_event("ANNOTATION_CREATED", z_id, 500 + lane, _mask(lane, round_ - 1)))
                    expected[str(x_id)] = _mask(lane, round_)
                    expected[str(z_id)] = _mask(lane, round_ - 1)

                def released(event):
                    start.wait(timeout=30)
                    return post(event)

                for answer in pool.map(released, events):
                    assert answer["status"] == "stored"
                _check_every_record(store, expected, round_)
