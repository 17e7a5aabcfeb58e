"""The corrections store on SQLite and on a real PostgreSQL server: round trips,
idempotency, crash safety, rejection of bad submissions, model registry, training requests."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest
from PIL import Image

from corrections_pg import start_server
from model import Click
from model.corrections import CorrectionRecord, StoreError, StoreUnavailableError, open_store


@pytest.fixture(scope="module")
def pg_server():
    server = start_server()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def make_store(backend, tmp_path, request):
    """make_store() opens (or reopens) the same store, as a second process would."""
    if backend == "sqlite":
        location, files = tmp_path / "data", None
    else:
        server = request.getfixturevalue("pg_server")
        location, files = server.new_database(), tmp_path / "files"

    def make():
        return open_store(location, files_dir=files)

    return make


@pytest.fixture
def store(make_store):
    return make_store()


def _mask(h=24, w=32, box=(4, 6, 12, 20)) -> np.ndarray:
    m = np.zeros((h, w), bool)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = True
    return m


def _image(h=24, w=32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    return buf.getvalue()


CLICKS = [Click(10, 8), Click(2, 2, positive=False), Click(15.5, 9.25)]


# ------------------------------------------------------------------------- round trips
def test_round_trip_keeps_every_field(store):
    img, mask = _image(), _mask()
    rid = store.add(source="label_studio", image=img, clicks=CLICKS, mask=mask, project=3, task_id=17,
                    annotation_id=99, labels=["cat"], author="ann@example.com", image_ref="/data/upload/3/a.png")
    rec = store.get(rid)
    assert isinstance(rec, CorrectionRecord)
    assert (rec.source, rec.project, rec.task_id, rec.annotation_id) == ("label_studio", "3", "17", "99")
    assert rec.clicks == tuple(CLICKS) and rec.clicks[0].positive
    assert (rec.height, rec.width) == (24, 32)
    assert rec.labels == ("cat",) and rec.author == "ann@example.com"
    assert rec.image_ref == "/data/upload/3/a.png"
    assert rec.created_at.endswith("+00:00") and rec.updated_at >= rec.created_at
    np.testing.assert_array_equal(store.load_mask(rec), mask)
    np.testing.assert_array_equal(store.load_image(rec), img)
    assert store.image_file(rec).is_file()
    assert store.list() == [rec] and store.count() == 1


def test_encoded_image_bytes_are_kept_as_given_and_hashed(store):
    import hashlib

    data = _jpeg(_image())
    rid = store.add(source="gradio", image=data, clicks=CLICKS[:1], mask=_mask())
    rec = store.get(rid)
    assert rec.image_sha256 == hashlib.sha256(data).hexdigest()
    assert rec.image_path.endswith(".jpg")
    assert store.image_file(rec).read_bytes() == data
    assert store.load_image(rec).shape == (24, 32, 3)


def test_reference_only_record_has_no_stored_image(store):
    rid = store.add(source="label_studio", image=None, image_ref="https://example.com/a.jpg", clicks=[],
                    mask=_mask())
    rec = store.get(rid)
    assert rec.image_path is None and rec.image_sha256 is None and rec.clicks == ()
    assert store.load_image(rec) is None
    updated = store.attach_image(rid, _image())
    assert updated.image_path is not None and updated.image_ref == "https://example.com/a.jpg"
    np.testing.assert_array_equal(store.load_image(updated), _image())


def test_list_filters_by_source_and_project(store):
    a = store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask())
    b = store.add(source="label_studio", image=_image(), clicks=CLICKS, mask=_mask(), project=1, annotation_id=1)
    c = store.add(source="label_studio", image=_image(), clicks=CLICKS, mask=_mask(), project=2, annotation_id=1)
    assert [r.id for r in store.list()] == [a, b, c]
    assert [r.id for r in store.list(source="label_studio")] == [b, c]
    assert [r.id for r in store.list(source="label_studio", project=2)] == [c]
    assert [r.id for r in store.list(annotation_id=1)] == [b, c]


def test_get_unknown_id_is_a_clear_error(store):
    with pytest.raises(StoreError, match="no correction with id"):
        store.get("nope")


# ------------------------------------------------------------------------- idempotency
def test_same_annotation_replaces_and_keeps_id_and_created_at(store):
    first = store.add(source="label_studio", image=_image(), clicks=CLICKS, mask=_mask(), project=1,
                      task_id=5, annotation_id=42, labels=["cat"])
    created = store.get(first).created_at
    new_mask = _mask(box=(10, 10, 20, 30))
    second = store.add(source="label_studio", image=None, image_ref="/data/upload/1/x.png", clicks=CLICKS[:1],
                       mask=new_mask, project=1, task_id=5, annotation_id=42, labels=["dog"])
    assert second == first and store.count() == 1
    rec = store.get(first)
    np.testing.assert_array_equal(store.load_mask(rec), new_mask)
    assert rec.labels == ("dog",) and rec.clicks == (CLICKS[0],)
    assert rec.created_at == created and rec.updated_at > created
    assert rec.image_path is not None, "an update without image bytes keeps the stored image"


def test_repeated_webhook_does_not_duplicate(store):
    for _ in range(3):
        store.add(source="label_studio", image=_image(), clicks=CLICKS, mask=_mask(), project=1, annotation_id=7)
    assert store.count() == 1


def test_annotation_key_includes_source_and_project(store):
    store.add(source="label_studio", image=_image(), clicks=CLICKS, mask=_mask(), project=1, annotation_id=7)
    store.add(source="label_studio", image=_image(), clicks=CLICKS, mask=_mask(), project=2, annotation_id=7)
    store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask(), project=1, annotation_id=7)
    store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask())
    store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask())
    assert store.count() == 5


def test_annotation_with_fewer_objects_drops_the_stale_ones(store):
    objects = [{"mask": _mask(box=(0, 0, 5, 5)), "clicks": [Click(2, 2)], "labels": ["a"]},
               {"mask": _mask(box=(10, 10, 20, 20)), "clicks": [Click(15, 15)], "labels": ["b"]}]
    ids = store.add_annotation(source="label_studio", image=_image(), objects=objects, project=1, annotation_id=8)
    assert len(ids) == 2 and [r.object_index for r in store.list()] == [0, 1]
    mask_a = store.files_dir / store.get(ids[0]).mask_path
    again = store.add_annotation(source="label_studio", image=_image(), objects=objects[1:], project=1,
                                 annotation_id=8)
    assert again == ids[:1]
    [rec] = store.list()
    assert rec.labels == ("b",) and rec.object_index == 0
    with pytest.raises(StoreError):
        store.get(ids[1])
    assert (store.files_dir / rec.mask_path).exists()
    assert not mask_a.exists(), "the mask no record uses any more is removed"


def test_replaced_mask_file_is_removed_when_unused(store):
    rid = store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask(), annotation_id=1)
    old_path = store.files_dir / store.get(rid).mask_path
    store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask(box=(1, 1, 9, 9)), annotation_id=1)
    assert not old_path.exists()
    assert (store.files_dir / store.get(rid).mask_path).exists()


def test_concurrent_writers_from_threads(store):
    errors = []

    def write(i):
        try:
            store.add(source="gradio", image=_image(seed=i), clicks=CLICKS, mask=_mask(), annotation_id=i % 4)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count() == 4


# ------------------------------------------------------------------------- crash safety
def test_crash_while_writing_files_keeps_the_previous_record(make_store, monkeypatch):
    store = make_store()
    rid = store.add(source="label_studio", image=_image(), clicks=CLICKS, mask=_mask(), project=1, annotation_id=3)
    before = store.get(rid)

    def crash(src, dst):
        raise OSError("simulated crash: disk went away")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StoreUnavailableError, match="simulated crash"):
        store.add(source="label_studio", image=_image(seed=9), clicks=CLICKS, mask=_mask(box=(0, 0, 3, 3)),
                  project=1, annotation_id=3)
    with pytest.raises(StoreUnavailableError):
        store.add(source="gradio", image=_image(seed=5), clicks=CLICKS, mask=_mask(box=(2, 2, 4, 4)))
    monkeypatch.undo()

    reopened = make_store()
    assert reopened.count() == 1
    after = reopened.get(rid)
    assert after == before
    np.testing.assert_array_equal(reopened.load_mask(after), _mask())
    np.testing.assert_array_equal(reopened.load_image(after), _image())
    leftovers = [p for p in reopened.files_dir.rglob("*") if p.is_file() and p.name.startswith(".tmp-")]
    assert leftovers == [], "a failed write leaves no partial file"


def test_crash_inside_the_transaction_rolls_back(make_store, monkeypatch):
    from model.corrections import store as store_module

    store = make_store()
    rid = store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask(), annotation_id=1)

    # The second object's row fails after the first object's row was written in the same
    # transaction: nothing of the submission may remain.
    calls = {"n": 0}
    real = store_module.clicks_to_json

    def second_fails(clicks):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash in the middle of the transaction")
        return real(clicks)

    monkeypatch.setattr(store_module, "clicks_to_json", second_fails)
    objects = [{"mask": _mask(), "clicks": [Click(10, 8)]}, {"mask": _mask(box=(0, 0, 2, 2)), "clicks": []}]
    with pytest.raises(RuntimeError):
        store.add_annotation(source="gradio", image=_image(), objects=objects, annotation_id=1)
    monkeypatch.undo()
    reopened = make_store()
    assert [r.id for r in reopened.list()] == [rid]
    assert reopened.get(rid).clicks == tuple(CLICKS)


# ------------------------------------------------------------------------- rejection
@pytest.mark.parametrize("kwargs, message", [
    (dict(mask=np.zeros((24, 32), bool)), "all background"),
    (dict(mask=np.ones((2, 3, 4), bool)), "2-D"),
    (dict(mask=np.full((24, 32), 7, np.uint8)), "0/1 or 0/255"),
    (dict(mask=None), "final mask"),
    (dict(clicks=[Click(1, 1, positive=False), Click(10, 8)]), "first click must be positive"),
    (dict(clicks=[Click(100, 8)]), "outside"),
    (dict(clicks=[["a", 1]]), "cannot read a click"),
    (dict(source="Label Studio!"), "source must be"),
    (dict(image=np.zeros((10, 10, 3), np.uint8)), "the mask is 32x24"),
    (dict(image=np.zeros((24, 32), np.float32)), "must be \\(H, W, 3\\) uint8"),
    (dict(image=b"not an image"), "cannot be read"),
    (dict(image="a string"), "image must be"),
    (dict(image=None), "needs its image"),
    (dict(labels=[""]), "label"),
    (dict(annotation_id=1.5), "annotation_id must be"),
    (dict(project="x" * 500), "project must be"),
])
def test_bad_submissions_are_rejected_and_nothing_changes(store, kwargs, message):
    good = store.add(source="gradio", image=_image(), clicks=CLICKS, mask=_mask(), annotation_id=1)
    files_before = sorted(p for p in store.files_dir.rglob("*") if p.is_file())
    args = dict(source="gradio", image=_image(seed=3), clicks=CLICKS, mask=_mask(box=(1, 1, 5, 5)), annotation_id=1)
    args.update(kwargs)
    with pytest.raises(StoreError, match=message):
        store.add(**args)
    assert [r.id for r in store.list()] == [good]
    np.testing.assert_array_equal(store.load_mask(store.get(good)), _mask())
    assert sorted(p for p in store.files_dir.rglob("*") if p.is_file()) == files_before


def test_objects_of_one_annotation_must_share_the_image_size(store):
    objects = [{"mask": _mask()}, {"mask": _mask(h=10, w=10, box=(0, 0, 3, 3))}]
    with pytest.raises(StoreError, match="one annotation is on one image"):
        store.add_annotation(source="gradio", image=None, image_ref="x", objects=objects)
    with pytest.raises(StoreError, match="at least one object"):
        store.add_annotation(source="gradio", image=None, image_ref="x", objects=[])
    assert store.count() == 0


def test_store_error_is_an_input_error():
    from model import FcanetInputError

    assert issubclass(StoreError, FcanetInputError)


def test_unknown_location_kinds_are_refused(tmp_path):
    with pytest.raises(StoreError, match="unknown store location"):
        open_store("mysql://x/y")
    with pytest.raises(StoreError, match="needs files_dir"):
        open_store("postgresql://127.0.0.1/x")
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        open_store(tmp_path / "f")


# ------------------------------------------------------------------------- model registry
def test_model_registry_promote_and_rollback(make_store):
    store = make_store()
    assert store.promoted_model() is None and store.list_models() == []
    store.register_model("v1", "/models/v1.safetensors", {"miou": 0.8})
    store.register_model("v2", "/models/v2.safetensors", {"miou": 0.85})
    store.register_model("v1", "/models/v1.safetensors", {"miou": 0.81})  # same path: updates metrics
    with pytest.raises(StoreError, match="already registered"):
        store.register_model("v1", "/elsewhere", {})
    with pytest.raises(StoreError, match="not registered"):
        store.promote("v9")
    with pytest.raises(StoreError, match="nothing to roll back"):
        store.rollback()
    store.promote("v1")
    with pytest.raises(StoreError, match="only model ever promoted"):
        store.rollback()
    store.promote("v2")
    store.promote("v2")  # no-op
    replica = make_store()  # another process sees the promotion through the store
    assert replica.promoted_model()["version"] == "v2"
    assert replica.promoted_model()["path"] == "/models/v2.safetensors"
    assert [m["promoted"] for m in replica.list_models()] == [False, True]
    assert store.rollback() == "v1"
    assert replica.promoted_model()["version"] == "v1"
    assert replica.promoted_model()["metrics"] == {"miou": 0.81}


def test_training_requests(store):
    rid = store.add_training_request(4, {"action": "START_TRAINING", "project": {"id": 4}})
    [req] = store.list_training_requests()
    assert req["id"] == rid and req["project"] == "4" and req["status"] == "requested"
    assert req["payload"]["action"] == "START_TRAINING"
    store.set_training_request_status(rid, "started:job-1")
    assert store.list_training_requests()[0]["status"] == "started:job-1"
    with pytest.raises(StoreError):
        store.set_training_request_status("nope", "x")
