import numpy as np
import pytest
import scipy.io
from PIL import Image

from model.evaluation.datasets import load_dataset


def _rgb(path, h=20, w=30):
    Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(path)


def _palette(path, arr):
    img = Image.fromarray(arr.astype(np.uint8), mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    img.save(path)


def test_grabcut(tmp_path):
    (tmp_path / "data_GT").mkdir()
    (tmp_path / "boundary_GT").mkdir()
    _rgb(tmp_path / "data_GT" / "a.jpg")
    m = np.zeros((20, 30), np.uint8)
    m[5:15, 5:20] = 255
    m[4, 4:21] = 128
    Image.fromarray(m).save(tmp_path / "boundary_GT" / "a.bmp")
    (s,) = load_dataset("grabcut", tmp_path)
    assert s.gt.sum() == 150 and s.ignore.sum() == 17 and s.load_image().shape == (20, 30, 3)


def test_berkeley_matches_by_stem_whatever_the_extension(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    _rgb(tmp_path / "images" / "x1.jpg")
    _rgb(tmp_path / "images" / "x2.bmp")
    for n in ("x1", "x2"):
        Image.fromarray(np.full((20, 30), 255, np.uint8)).save(tmp_path / "masks" / f"{n}.png")
    assert [s.name for s in load_dataset("berkeley", tmp_path)] == ["x1", "x2"]


def test_davis_any_positive_value_is_object(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    _rgb(tmp_path / "img" / "001.jpg")
    arr = np.zeros((20, 30))
    arr[1:3, 1:3] = 1
    arr[5:7, 5:7] = 2
    _palette(tmp_path / "gt" / "001.png", arr)
    (s,) = load_dataset("davis", tmp_path)
    assert s.gt.sum() == 8


def test_coco_mval_both_layouts(tmp_path):
    a = tmp_path / "shared"
    (a / "img").mkdir(parents=True)
    (a / "gt").mkdir()
    _rgb(a / "img" / "000001.jpg")
    Image.fromarray(np.full((20, 30), 255, np.uint8)).save(a / "gt" / "cat00_000001.png")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(a / "gt" / "dog00_000001.png")
    (a / "instances.csv").write_text("mask,image\ncat00_000001.png,000001.jpg\ndog00_000001.png,000001.jpg\n")
    samples = load_dataset("coco_mval", a)
    assert [s.gt.sum() for s in samples] == [600, 0]
    b = tmp_path / "common"
    (b / "img").mkdir(parents=True)
    (b / "gt").mkdir()
    _rgb(b / "img" / "n1.jpg")
    Image.fromarray(np.full((20, 30), 255, np.uint8)).save(b / "gt" / "n1.png")
    assert [s.name for s in load_dataset("coco_mval", b)] == ["n1"]


def test_pascal_voc_one_sample_per_instance_and_ignore(tmp_path):
    for d in ("JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
        (tmp_path / d).mkdir(parents=True)
    _rgb(tmp_path / "JPEGImages" / "2007_000001.jpg")
    inst = np.zeros((20, 30))
    inst[2:6, 2:6] = 1
    inst[10:14, 10:20] = 2
    inst[6, 2:6] = 255
    _palette(tmp_path / "SegmentationObject" / "2007_000001.png", inst)
    cls = (inst > 0).astype(int) * 15
    cls[inst == 255] = 255
    _palette(tmp_path / "SegmentationClass" / "2007_000001.png", cls)
    (tmp_path / "ImageSets/Segmentation/val.txt").write_text("2007_000001\n")
    samples = load_dataset("pascal_voc", tmp_path)
    assert [s.gt.sum() for s in samples] == [16, 40]
    assert samples[0].ignore.sum() == 4


def test_sbd_inst_mat(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "inst").mkdir()
    _rgb(tmp_path / "img" / "2008_000002.jpg")
    seg = np.zeros((20, 30), np.uint8)
    seg[1:4, 1:4] = 1
    seg[10:12, 10:15] = 2
    gtinst = np.zeros((1, 1), dtype=[("Segmentation", object), ("Boundaries", object), ("Categories", object)])
    gtinst[0, 0]["Segmentation"] = seg
    gtinst[0, 0]["Boundaries"] = np.zeros((2, 1), object)
    gtinst[0, 0]["Categories"] = np.array([[15], [7]])
    scipy.io.savemat(tmp_path / "inst" / "2008_000002.mat", {"GTinst": gtinst})
    samples = load_dataset("sbd", tmp_path)
    assert [s.gt.sum() for s in samples] == [9, 10]


def test_unknown_and_missing(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError):
        load_dataset("davis", tmp_path / "nope")
