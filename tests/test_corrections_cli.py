"""`fcanet corrections list|export` through the real command entry point."""

from __future__ import annotations

import json

import numpy as np
from pycocotools.coco import COCO

from model import Click
from model.cli import main
from model.corrections import open_store


def _filled_store(tmp_path):
    store = open_store(tmp_path / "data")
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    store.add(source="gradio", image=np.zeros((20, 20, 3), np.uint8), clicks=[Click(10, 10)], mask=mask,
              labels=["cell"])
    store.add(source="label_studio", image=None, image_ref="/data/upload/1/a.png", clicks=[], mask=mask,
              project=1, task_id=2, annotation_id=3)
    return tmp_path / "data"


def test_list_prints_each_record(tmp_path, capsys):
    data = _filled_store(tmp_path)
    assert main(["corrections", "list", "--store", str(data)]) == 0
    out = capsys.readouterr().out
    assert "gradio" in out and "label_studio" in out and "2 correction(s)" in out
    assert main(["corrections", "list", "--store", str(data), "--json", "--source", "gradio"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["source"] for r in records] == ["gradio"] and records[0]["clicks"] == [[10.0, 10.0, True]]


def test_export_coco_file(tmp_path, capsys):
    data = _filled_store(tmp_path)
    out = tmp_path / "out.json"
    assert main(["corrections", "export", "--format", "coco", str(out), "--store", str(data)]) == 0
    assert "2 annotation(s)" in capsys.readouterr().out
    coco = COCO(str(out))
    assert len(coco.getAnnIds()) == 2


def test_store_from_environment(tmp_path, capsys, monkeypatch):
    data = _filled_store(tmp_path)
    monkeypatch.setenv("FCANET_STORE", str(data))
    assert main(["corrections", "list"]) == 0
    assert "2 correction(s)" in capsys.readouterr().out


def test_missing_store_is_a_clear_error(tmp_path, capsys):
    assert main(["corrections", "list", "--store", str(tmp_path / "none")]) == 2
    assert "no corrections store" in capsys.readouterr().err
    assert not (tmp_path / "none").exists(), "listing must not create a store"


def test_unknown_format_is_refused(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["corrections", "export", "--format", "yolo", str(tmp_path / "x.json")])
