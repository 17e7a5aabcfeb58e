"""COCO export of the store, read back with pycocotools."""

from __future__ import annotations

import json

import numpy as np
from pycocotools.coco import COCO

from model import Click
from model.corrections import open_store
from model.corrections.coco import export_coco, mask_to_rle


def _mask(box, h=30, w=40):
    m = np.zeros((h, w), bool)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = True
    return m


def test_export_reads_back_with_pycocotools(tmp_path):
    store = open_store(tmp_path / "data")
    img = np.full((30, 40, 3), 200, np.uint8)
    a, b, c = _mask((2, 3, 10, 12)), _mask((15, 20, 28, 39)), _mask((0, 0, 5, 5))
    store.add(source="label_studio", image=img, clicks=[Click(5, 5), Click(0, 0, False)], mask=a,
              project=1, annotation_id=1, labels=["cat"])
    store.add(source="label_studio", image=img, clicks=[Click(25, 20)], mask=b, project=1, annotation_id=2,
              labels=["dog"])
    store.add(source="gradio", image=None, image_ref="https://example.com/x.png", clicks=[], mask=c)
    out = tmp_path / "coco.json"
    counts = export_coco(store, out)
    assert counts == {"images": 2, "annotations": 3, "categories": 3}

    coco = COCO(str(out))
    assert sorted(cat["name"] for cat in coco.loadCats(coco.getCatIds())) == ["cat", "dog", "object"]
    anns = coco.loadAnns(coco.getAnnIds())
    for ann, expected in zip(anns, [a, b, c]):
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), expected)
        assert ann["area"] == int(expected.sum())
    assert anns[0]["bbox"] == [3.0, 2.0, 9.0, 8.0]
    assert anns[0]["clicks"] == [[5.0, 5.0, True], [0.0, 0.0, False]]
    # two records on the same stored image share one COCO image
    assert anns[0]["image_id"] == anns[1]["image_id"] != anns[2]["image_id"]
    image = coco.loadImgs(anns[0]["image_id"])[0]
    assert (image["width"], image["height"]) == (40, 30)
    assert (store.files_dir / image["file_name"]).is_file()
    assert coco.loadImgs(anns[2]["image_id"])[0]["file_name"] == "https://example.com/x.png"


def test_export_filters_and_empty_store(tmp_path):
    store = open_store(tmp_path / "data")
    store.add(source="gradio", image=None, image_ref="r", clicks=[], mask=_mask((0, 0, 3, 3)))
    out = tmp_path / "only_ls.json"
    assert export_coco(store, out, source="label_studio")["annotations"] == 0
    data = json.loads(out.read_text())
    assert data["images"] == [] and data["annotations"] == []


def test_rle_counts_are_json_text():
    rle = mask_to_rle(_mask((1, 1, 4, 4)))
    assert isinstance(rle["counts"], str) and rle["size"] == [30, 40]
