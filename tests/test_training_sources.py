"""Training data sources on tiny fixtures written in each dataset's real on-disk format."""

import json

import numpy as np
import pytest
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils

from model.training.augment import AugmentConfig
from model.training.dataset import MixedObjectDataset
from model.training.sources import SOURCES, build_source, split_holdout
from model.training.sources.coco_json import CocoJsonSource
from model.training.sources.folder_pairs import FolderPairsSource
from model.training.sources.pascal_voc import PascalVocSource
from model.training.sources.sbd import SbdSource
from training_fixtures import EllipseSource

H, W = 20, 30


def _rgb(path, h=H, w=W, seed=0):
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def _palette(path, arr):
    img = Image.fromarray(arr.astype(np.uint8), mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [224, 224, 192] * 252)
    img.save(path)


def _box(r0, r1, c0, c1, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = True
    return m


def _check(sample, image_id, mask, source_name, h=H, w=W):
    assert sample.source == source_name and sample.image_id == image_id
    image = sample.load_image()
    assert image.shape == (h, w, 3) and image.dtype == np.uint8
    got = sample.load_mask()
    assert got.dtype == bool and got.shape == (h, w)
    np.testing.assert_array_equal(got, mask)


# ---------------------------------------------------------------- folder_pairs


def _folder_pairs(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    png_pixels = _rgb(images / "b.png", seed=2)
    _rgb(images / "a.jpg", seed=1)
    _rgb(images / "c.jpg", seed=3)  # no mask: left out
    a = np.zeros((H, W), np.uint8)
    a[2:7, 3:9] = 1  # 30 px, value 1: nonzero is object
    a[10:12, 20:25] = 200  # 10 px, another value of the same binary object
    Image.fromarray(a).save(masks / "a_mask.png")
    b = np.zeros((H, W), np.uint8)
    b[0:2, 0:3] = 255  # 6 px: under min_pixels
    Image.fromarray(b).save(masks / "b_mask.bmp")
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(masks / "z_mask.png")  # no image
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(masks / "c.png")  # lacks the suffix
    return images, masks, a, png_pixels


def test_folder_pairs_binary_matches_by_stem_and_skips_tiny(tmp_path):
    images, masks, a, _ = _folder_pairs(tmp_path)
    src = FolderPairsSource(str(images), str(masks), mask_suffix="_mask", min_pixels=8)
    assert len(src) == 1 and src.image_id(0) == "a"
    _check(src[0], "a", a > 0, "folder_pairs")
    assert src[0].load_mask().sum() == 40
    # with a lower min_pixels the 6-pixel object of b (a .bmp mask for a .png image) comes in
    src = FolderPairsSource(str(images), str(masks), mask_suffix="_mask", min_pixels=6)
    assert [src.image_id(i) for i in range(len(src))] == ["a", "b"]
    _check(src[1], "b", _box(0, 2, 0, 3), "folder_pairs")


def test_folder_pairs_png_image_pixels_come_back_exactly(tmp_path):
    images, masks, _, png_pixels = _folder_pairs(tmp_path)
    src = FolderPairsSource(str(images), str(masks), mask_suffix="_mask", min_pixels=1)
    (b,) = [src[i] for i in range(len(src)) if src.image_id(i) == "b"]
    np.testing.assert_array_equal(b.load_image(), png_pixels)


def test_folder_pairs_instance_label_maps(tmp_path):
    images, masks = tmp_path / "im", tmp_path / "gt"
    images.mkdir()
    masks.mkdir()
    _rgb(images / "p.jpg")
    inst = np.zeros((H, W), np.uint8)
    inst[1:5, 1:6] = 1  # 20 px
    inst[8:9, 8:10] = 2  # 2 px: under min_pixels
    inst[12:18, 20:25] = 3  # 30 px
    _palette(masks / "p.png", inst)
    src = FolderPairsSource(str(images), str(masks), instances=True, min_pixels=10)
    assert len(src) == 2 and [src.image_id(i) for i in range(2)] == ["p", "p"]
    _check(src[0], "p", _box(1, 5, 1, 6), "folder_pairs")
    _check(src[1], "p", _box(12, 18, 20, 25), "folder_pairs")
    # the same file read as binary is one object: every nonzero pixel
    (whole,) = [FolderPairsSource(str(images), str(masks), min_pixels=10)[0]]
    _check(whole, "p", inst > 0, "folder_pairs")


def test_folder_pairs_nothing_found_is_an_error(tmp_path):
    images, masks, _, _ = _folder_pairs(tmp_path)
    with pytest.raises(ValueError):
        FolderPairsSource(str(images), str(masks), mask_suffix="_nope")


# ---------------------------------------------------------------- coco_json


def _rle(mask):
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _uncompressed_rle(mask):
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def _coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    _rgb(images / "one.jpg")
    _rgb(images / "two.png", h=16, w=24, seed=5)
    rle_mask = np.zeros((16, 24), bool)
    rle_mask[4:10, 5:9] = True
    rle_mask[12:14, 0:24] = True  # 24 + 48 = 72 px, not one box
    crowd_mask = _box(10, 18, 0, 10)  # 80 px
    data = {
        "images": [{"id": 1, "file_name": "one.jpg", "height": H, "width": W},
                   {"id": 7, "file_name": "two.png", "height": 16, "width": 24}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 50.0, "bbox": [2, 3, 10, 5],
             "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]]},
            {"id": 11, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 72, "bbox": [0, 4, 24, 10],
             "segmentation": _rle(rle_mask)},
            {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 80, "bbox": [0, 10, 10, 8],
             "segmentation": _uncompressed_rle(crowd_mask)},
            {"id": 13, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 4, "bbox": [20, 0, 2, 2],
             "segmentation": [[20, 0, 22, 0, 22, 2, 20, 2]]},  # tiny
            {"id": 14, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [25, 12, 4, 6],
             "segmentation": [[25, 12, 29, 12, 29, 18, 25, 18]]},  # no area field: 24 px decoded
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path, images, rle_mask, crowd_mask


def test_coco_json_polygon_rle_crowd_and_tiny(tmp_path):
    ann, images, rle_mask, crowd_mask = _coco(tmp_path)
    src = CocoJsonSource(str(ann), str(images), min_pixels=20)
    assert len(src) == 3  # polygon, RLE, the polygon without an area; crowd and tiny left out
    assert [src.image_id(i) for i in range(3)] == ["1", "7", "1"]
    _check(src[0], "1", _box(3, 8, 2, 12), "coco_json")
    _check(src[1], "7", rle_mask, "coco_json", h=16, w=24)
    _check(src[2], "1", _box(12, 18, 25, 29), "coco_json")
    # the area fallback decodes the mask: 24 px is under 25
    assert len(CocoJsonSource(str(ann), str(images), min_pixels=25)) == 2


def test_coco_json_crowd_kept_on_request_with_uncompressed_rle(tmp_path):
    ann, images, _, crowd_mask = _coco(tmp_path)
    src = CocoJsonSource(str(ann), str(images), min_pixels=20, skip_crowd=False)
    assert len(src) == 4 and src.image_id(2) == "1"
    _check(src[2], "1", crowd_mask, "coco_json")


# ---------------------------------------------------------------- sbd


def _sbd_mat(path, seg):
    gtinst = np.zeros((1, 1), dtype=[("Segmentation", object), ("Boundaries", object), ("Categories", object)])
    gtinst[0, 0]["Segmentation"] = seg.astype(np.uint8)
    n = int(seg.max())
    gtinst[0, 0]["Boundaries"] = np.zeros((n, 1), object)
    gtinst[0, 0]["Categories"] = np.arange(1, n + 1).reshape(n, 1)
    scipy.io.savemat(path, {"GTinst": gtinst})


def _sbd(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "inst").mkdir()
    seg_a = np.zeros((H, W))
    seg_a[1:4, 1:4] = 1  # 9 px
    seg_a[10:12, 10:15] = 2  # 10 px
    seg_a[19, 29] = 3  # 1 px: tiny
    seg_b = np.zeros((H, W))
    seg_b[5:10, 5:10] = 1
    seg_c = np.zeros((H, W))
    seg_c[0:20, 0:2] = 1
    for name, seg in (("2008_000002", seg_a), ("2008_000003", seg_b), ("2008_000009", seg_c)):
        _rgb(tmp_path / "img" / f"{name}.jpg")
        _sbd_mat(tmp_path / "inst" / f"{name}.mat", seg)
    (tmp_path / "train.txt").write_text("2008_000002\n2008_000003\n")
    (tmp_path / "val.txt").write_text("2008_000009\n")


def test_sbd_one_sample_per_instance_of_the_split(tmp_path):
    _sbd(tmp_path)
    src = SbdSource(str(tmp_path), split="train", min_pixels=5)
    assert [src.image_id(i) for i in range(len(src))] == ["2008_000002", "2008_000002", "2008_000003"]
    _check(src[0], "2008_000002", _box(1, 4, 1, 4), "sbd")
    _check(src[1], "2008_000002", _box(10, 12, 10, 15), "sbd")
    _check(src[2], "2008_000003", _box(5, 10, 5, 10), "sbd")
    assert len(SbdSource(str(tmp_path), split="train", min_pixels=1)) == 4  # the 1-pixel instance
    val = SbdSource(str(tmp_path), split="val", min_pixels=5)
    assert len(val) == 1
    _check(val[0], "2008_000009", _box(0, 20, 0, 2), "sbd")
    with pytest.raises(ValueError):
        SbdSource(str(tmp_path), split="test")


def test_sbd_holdout_split_keeps_images_whole(tmp_path):
    _sbd(tmp_path)
    train, held = split_holdout(SbdSource(str(tmp_path), min_pixels=5), fraction=0.5, seed=0)
    train_ids = {train.image_id(i) for i in range(len(train))}
    held_ids = {held.image_id(i) for i in range(len(held))}
    assert len(train) + len(held) == 3 and len(held_ids) == 1 and not train_ids & held_ids


# ---------------------------------------------------------------- pascal_voc


def _voc(tmp_path):
    for d in ("JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
        (tmp_path / d).mkdir(parents=True)
    inst = np.zeros((H, W))
    inst[2:6, 2:6] = 1  # 16 px
    inst[6, 2:6] = 255  # void band under instance 1: not part of it
    inst[1, 1:7] = 255
    inst[10:14, 10:20] = 2  # 40 px
    inst[18:20, 0:2] = 3  # 4 px: tiny
    _rgb(tmp_path / "JPEGImages" / "2007_000032.jpg")
    _palette(tmp_path / "SegmentationObject" / "2007_000032.png", inst)
    other = np.zeros((H, W))
    other[0:10, 0:10] = 1
    _rgb(tmp_path / "JPEGImages" / "2007_000033.jpg")
    _palette(tmp_path / "SegmentationObject" / "2007_000033.png", other)
    (tmp_path / "ImageSets/Segmentation/train.txt").write_text("2007_000032\n")
    (tmp_path / "ImageSets/Segmentation/val.txt").write_text("2007_000033\n")
    return inst


def test_pascal_voc_one_sample_per_instance_void_is_not_object(tmp_path):
    _voc(tmp_path)
    src = PascalVocSource(str(tmp_path), min_pixels=10)
    assert len(src) == 2 and [src.image_id(i) for i in range(2)] == ["2007_000032"] * 2
    _check(src[0], "2007_000032", _box(2, 6, 2, 6), "pascal_voc")
    _check(src[1], "2007_000032", _box(10, 14, 10, 20), "pascal_voc")
    assert len(PascalVocSource(str(tmp_path), min_pixels=4)) == 3
    val = PascalVocSource(str(tmp_path), split="val", min_pixels=10)
    assert len(val) == 1
    _check(val[0], "2007_000033", _box(0, 10, 0, 10), "pascal_voc")


# ---------------------------------------------------------------- registry and mixing


def test_build_source_for_each_type(tmp_path):
    for name in ("fp", "coco", "sbd", "voc"):
        (tmp_path / name).mkdir()
    fp_images, fp_masks, _, _ = _folder_pairs(tmp_path / "fp")
    ann, coco_images, _, _ = _coco(tmp_path / "coco")
    _sbd(tmp_path / "sbd")
    _voc(tmp_path / "voc")
    specs = {
        "folder_pairs": ({"images_dir": str(fp_images), "masks_dir": str(fp_masks), "mask_suffix": "_mask",
                          "min_pixels": 8}, FolderPairsSource, 1),
        "coco_json": ({"annotation_file": str(ann), "images_dir": str(coco_images), "min_pixels": 20},
                      CocoJsonSource, 3),
        "sbd": ({"root": str(tmp_path / "sbd"), "split": "train", "min_pixels": 5}, SbdSource, 3),
        "pascal_voc": ({"root": str(tmp_path / "voc"), "split": "train", "min_pixels": 10}, PascalVocSource, 2),
    }
    for kind, (keys, cls, count) in specs.items():
        assert kind in SOURCES
        src = build_source({"type": kind, **keys})
        assert isinstance(src, cls) and src.name == kind and len(src) == count
    with pytest.raises(ValueError, match="unknown data source type"):
        build_source({"type": "imagenet", "root": str(tmp_path)})


class _Recording:
    """Delegates to a source and records the source name of every object handed out."""

    def __init__(self, source, seen):
        self.source, self.seen, self.name = source, seen, source.name

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        obj = self.source[i]
        self.seen.append(obj.source)
        return obj


def test_a_new_source_mixes_with_others_in_the_dataset(tmp_path):
    _voc(tmp_path)
    seen = []
    voc = _Recording(PascalVocSource(str(tmp_path), min_pixels=10), seen)
    ellipses = _Recording(EllipseSource(), seen)
    ds = MixedObjectDataset([ellipses, voc], [1.0, 1.0], length=12, seed=3, augment_cfg=AugmentConfig(crop_size=32, short_side=64))
    for g in range(len(ds)):
        item = ds[g]
        assert item["image"].shape == (3, 32, 32) and item["gt"].shape == (1, 32, 32)
        assert item["gt"].sum() > 0 and 1 <= int(item["num_clicks"]) <= 21
    assert {"pascal_voc", "ellipses"} <= set(seen)
