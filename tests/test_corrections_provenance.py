"""Who made each correction, with which model, in how many clicks and how long: stored, filtered,
exported, and read back from stores created before these fields existed."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from pycocotools.coco import COCO

from model import Click
from model.cli import main
from model.corrections import StoreError, open_store


def _mask():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    return mask


def _filled(tmp_path):
    store = open_store(tmp_path / "data")
    image = np.zeros((20, 20, 3), np.uint8)
    store.add(source="label_studio", image=image, clicks=[Click(10, 10)], mask=_mask(), annotation_id=1,
              author="ann@example.org", model_version="ft-1-step150", lead_time_s=12.5)
    store.add(source="label_studio", image=image, clicks=[Click(10, 10), Click(1, 1, False), Click(12, 12)],
              mask=_mask(), annotation_id=2, author="bob@example.org", model_version="bundle-step2000",
              lead_time_s=40.0)
    store.add(source="gradio", image=image, clicks=[Click(10, 10)], mask=_mask(), click_count=4)
    return store


def test_records_keep_labeler_model_clicks_and_time(tmp_path):
    store = _filled(tmp_path)
    a, b, c = store.list()
    assert (a.labeler, a.model_version, a.click_count, a.lead_time_s) == ("ann@example.org", "ft-1-step150", 1, 12.5)
    assert (b.labeler, b.click_count, b.lead_time_s) == ("bob@example.org", 3, 40.0)
    # a caller that knows more clicks than it kept (e.g. ones dropped as invalid) says so
    assert (c.labeler, c.model_version, c.click_count, c.lead_time_s) == (None, None, 4, None)
    assert json.loads(json.dumps(a.to_dict()))["model_version"] == "ft-1-step150"


def test_list_filters_by_provenance(tmp_path):
    store = _filled(tmp_path)
    assert [r.annotation_id for r in store.list(labeler="bob@example.org")] == ["2"]
    assert [r.annotation_id for r in store.list(model_version="ft-1-step150")] == ["1"]
    assert len(store.list(min_clicks=3)) == 2 and len(store.list(max_clicks=1)) == 1
    assert [r.annotation_id for r in store.list(max_seconds=20)] == ["1"]
    assert [r.annotation_id for r in store.list(min_seconds=20)] == ["2"]


@pytest.mark.parametrize("kwargs", [{"model_version": ""}, {"model_version": 3}, {"lead_time_s": -1.0},
                                    {"lead_time_s": float("nan")}, {"click_count": -2}, {"click_count": 1.5}])
def test_bad_provenance_is_refused(tmp_path, kwargs):
    store = open_store(tmp_path / "data")
    with pytest.raises(StoreError):
        store.add(source="gradio", image=np.zeros((20, 20, 3), np.uint8), clicks=[], mask=_mask(), **kwargs)
    assert store.count() == 0


def test_cli_list_filters_by_labeler_and_model(tmp_path, capsys):
    _filled(tmp_path)
    data = str(tmp_path / "data")
    assert main(["corrections", "list", "--store", data, "--labeler", "ann@example.org"]) == 0
    out = capsys.readouterr().out
    assert "ann@example.org" in out and "bob@example.org" not in out and "1 correction(s)" in out
    assert main(["corrections", "list", "--store", data, "--json", "--model-version", "bundle-step2000"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["author"] == "bob@example.org" and record["lead_time_s"] == 40.0 and record["click_count"] == 3
    assert main(["corrections", "list", "--store", data, "--min-clicks", "2", "--max-seconds", "60"]) == 0
    assert "1 correction(s)" in capsys.readouterr().out


def test_coco_export_carries_provenance(tmp_path, capsys):
    _filled(tmp_path)
    out = tmp_path / "out.json"
    assert main(["corrections", "export", "--format", "coco", str(out), "--store", str(tmp_path / "data"),
                 "--labeler", "ann@example.org"]) == 0
    coco = COCO(str(out))
    [ann] = coco.loadAnns(coco.getAnnIds())
    assert (ann["labeler"], ann["model_version"], ann["click_count"], ann["lead_time_s"]) == \
        ("ann@example.org", "ft-1-step150", 1, 12.5)


def test_a_store_created_before_provenance_opens_and_reads_none(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / "corrections.sqlite3")
    conn.executescript("""
        CREATE TABLE corrections (id TEXT PRIMARY KEY, dedup_key TEXT, object_index INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL, project TEXT, task_id TEXT, annotation_id TEXT, image_sha256 TEXT,
            image_path TEXT, image_ref TEXT, clicks TEXT NOT NULL, mask_path TEXT NOT NULL,
            height INTEGER NOT NULL, width INTEGER NOT NULL, labels TEXT NOT NULL, author TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
        INSERT INTO corrections VALUES ('old1', NULL, 0, 'gradio', NULL, NULL, NULL, NULL, NULL, 'ref',
            '[]', 'masks/x.png', 20, 20, '[]', 'carol', '2026-01-01T00:00:00', '2026-01-01T00:00:00');
    """)
    conn.commit()
    conn.close()
    store = open_store(folder)
    [old] = store.list()
    assert old.labeler == "carol" and old.model_version is None and old.click_count is None
    store.add(source="gradio", image=np.zeros((20, 20, 3), np.uint8), clicks=[Click(10, 10)], mask=_mask(),
              model_version="v2")
    assert [r.model_version for r in store.list()] == [None, "v2"]


@pytest.fixture(scope="module")
def pg_server():
    from corrections_pg import start_server

    server = start_server()
    yield server
    server.stop()


def test_postgres_store_gains_the_columns_and_filters_by_them(pg_server, tmp_path):
    import psycopg

    url = pg_server.new_database()
    with psycopg.connect(url, autocommit=True) as conn:  # a store created before provenance
        conn.execute("""
            CREATE TABLE corrections (id TEXT PRIMARY KEY, dedup_key TEXT, object_index INTEGER NOT NULL DEFAULT 0,
                source TEXT NOT NULL, project TEXT, task_id TEXT, annotation_id TEXT, image_sha256 TEXT,
                image_path TEXT, image_ref TEXT, clicks TEXT NOT NULL, mask_path TEXT NOT NULL,
                height INTEGER NOT NULL, width INTEGER NOT NULL, labels TEXT NOT NULL, author TEXT,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""")
        conn.execute("INSERT INTO corrections VALUES ('old1', NULL, 0, 'gradio', NULL, NULL, NULL, NULL, NULL, "
                     "'ref', '[]', 'masks/x.png', 20, 20, '[]', 'carol', '2026-01-01T00:00:00', "
                     "'2026-01-01T00:00:00')")
    store = open_store(url, files_dir=tmp_path / "files")
    store.add(source="label_studio", image=np.zeros((20, 20, 3), np.uint8), clicks=[Click(10, 10)], mask=_mask(),
              annotation_id=5, author="ann", model_version="v2", lead_time_s=3.5)
    old, new = store.list()
    assert (old.labeler, old.model_version, old.lead_time_s) == ("carol", None, None)
    assert (new.labeler, new.model_version, new.click_count, new.lead_time_s) == ("ann", "v2", 1, 3.5)
    assert [r.id for r in store.list(labeler="ann", model_version="v2", max_seconds=5, min_clicks=1)] == [new.id]
    store.db.close()
