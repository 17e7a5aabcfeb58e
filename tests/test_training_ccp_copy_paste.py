"""The CCP and copy-paste training sources, on small synthetic files in CCP's on-disk format."""

import numpy as np
import pytest
from PIL import Image

from model.training.config import TrainConfig
from model.training.sources import build_source
from model.training.sources.ccp import CcpSource
from model.training.sources.copy_paste import CopyPasteSource, paste
from training_fixtures import EllipseSource

H, W = 40, 30
LABELS = "0\tnull\n1\tbag\n19\thair\n39\tshoes\n41\tskin\n55\tvest\n"


def _ccp(root, maps):
    """img/<id>.jpg + labels/<id>.png (mode L label maps) + labels.txt, as the dataset ships."""
    (root / "img").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "labels.txt").write_text(LABELS)
    for image_id, labels in maps.items():
        h, w = labels.shape
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            root / "img" / f"{image_id}.jpg")
        Image.fromarray(labels.astype(np.uint8), mode="L").save(root / "labels" / f"{image_id}.png")
    return root


def _person():
    """Hair on top, a vest, skin in two separate regions (two hands), one tiny shoe."""
    labels = np.zeros((H, W), np.uint8)
    labels[2:8, 10:20] = 19     # hair, 60 px
    labels[8:30, 8:22] = 55     # vest, 308 px
    labels[12:22, 2:7] = 41     # left hand, 50 px
    labels[12:22, 23:28] = 41   # right hand, 50 px
    labels[36:38, 10:12] = 39   # shoe, 4 px: under 1 % of 1200
    return labels


def _masks(source):
    return {(s.image_id, int(s.load_mask().sum())): s.load_mask() for s in (source[i] for i in range(len(source)))}


def test_ccp_person_and_each_connected_part(tmp_path):
    labels = _person()
    source = CcpSource(str(_ccp(tmp_path / "ccp", {"0001": labels})), min_area=0.01)
    got = [source[i].load_mask() for i in range(len(source))]
    assert all(m.shape == (H, W) and m.dtype == bool for m in got)
    assert source[0].load_image().shape == (H, W, 3)
    expected = [labels > 0, labels == 19]
    left, right = np.zeros((H, W), bool), np.zeros((H, W), bool)
    left[12:22, 2:7], right[12:22, 23:28] = True, True
    expected += [left, right, labels == 55]
    assert len(got) == len(expected)  # the 4-pixel shoe is under min_area
    for want in expected:
        assert any(np.array_equal(want, g) for g in got), "a candidate object is missing"
    assert {source.image_id(i) for i in range(len(source))} == {"0001"}


def test_ccp_switches_and_excluded_labels(tmp_path):
    root = str(_ccp(tmp_path / "ccp", {"0001": _person(), "0002": _person()}))
    people = CcpSource(root, parts=False)
    assert len(people) == 2 and all(people[i].load_mask().sum() == (_person() > 0).sum() for i in range(2))
    assert len(CcpSource(root, person=False)) == 8
    assert len(CcpSource(root, person=False, exclude_labels=("skin",))) == 4
    with pytest.raises(ValueError, match="unknown labels"):
        CcpSource(root, exclude_labels=("wings",))
    with pytest.raises(ValueError, match="person and parts"):
        CcpSource(root, person=False, parts=False)


def test_ccp_part_that_is_the_whole_person_is_taken_once(tmp_path):
    labels = np.zeros((H, W), np.uint8)
    labels[5:35, 5:25] = 55
    source = CcpSource(str(_ccp(tmp_path / "ccp", {"0001": labels})))
    assert len(source) == 1


def test_ccp_by_spec_and_empty_folder(tmp_path):
    root = _ccp(tmp_path / "ccp", {"0001": _person()})
    assert len(build_source({"type": "ccp", "root": str(root)})) == 5
    (tmp_path / "empty" / "img").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir()
    with pytest.raises(ValueError, match="no CCP objects"):
        CcpSource(str(tmp_path / "empty"))


# ---------------------------------------------------------------- copy-paste


def test_paste_puts_the_masked_object_into_its_box():
    background = np.full((50, 60, 3), (0, 0, 200), np.uint8)
    obj = np.full((20, 20, 3), (0, 255, 0), np.uint8)
    obj[5:15, 5:15] = (255, 0, 0)
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    out, pasted = paste(background, obj, mask, top=10, left=30, height=20, width=20, feather=0)
    expected = np.zeros((50, 60), bool)
    expected[10:30, 30:50] = True
    np.testing.assert_array_equal(pasted, expected)
    assert (out[pasted] == (255, 0, 0)).all()
    assert (out[~pasted] == (0, 0, 200)).all()  # the object's own background stays behind


class _Solid:
    """Objects: a red square on green; scenes: blue images whose object is the whole frame."""

    def __init__(self, name, count, colour, size, full=False):
        self.name, self.count, self.colour, self.size, self.full = name, count, colour, size, full

    def __len__(self):
        return self.count

    def image_id(self, i):
        return f"{self.name}{i}"

    def _image(self):
        img = np.zeros((*self.size, 3), np.uint8)
        img[:] = (0, 255, 0) if not self.full else self.colour
        img[self._mask()] = self.colour
        return img

    def _mask(self):
        m = np.zeros(self.size, bool)
        if self.full:
            m[:] = True
        else:
            m[4:-4, 6:-6] = True
        return m

    def __getitem__(self, i):
        from model.training.sources.base import ObjectSample

        return ObjectSample(self.name, self.image_id(i), self._image, self._mask)


def _copy_paste(**kw):
    args = dict(objects=[_Solid("obj", 3, (255, 0, 0), (30, 40))],
                backgrounds=[_Solid("scene", 4, (0, 0, 200), (60, 80), full=True)],
                count=20, seed=3, scale_range=(0.3, 0.6), min_pixels=10, feather=0.8)
    args.update(kw)
    return CopyPasteSource(**args)


def test_copy_paste_target_is_the_pasted_object():
    source = _copy_paste(occluded_target_probability=0.0)
    for i in range(6):
        image, target = source[i].load_image(), source[i].load_mask()
        pasted = image[..., 0] > 0  # only the paste has any red
        assert target.any() and np.array_equal(target, pasted)
        assert (image[~pasted] == (0, 0, 200)).all()
    a, b = source[2], _copy_paste(occluded_target_probability=0.0)[2]
    np.testing.assert_array_equal(a.load_image(), b.load_image())  # a pure function of (seed, i)
    assert not np.array_equal(source[0].load_mask(), source[1].load_mask())


def test_copy_paste_occluded_target_loses_what_the_paste_covers():
    source = _copy_paste(occluded_target_probability=1.0)
    for i in range(6):
        image, target = source[i].load_image(), source[i].load_mask()
        pasted = image[..., 0] > 0
        assert pasted.any()
        np.testing.assert_array_equal(target, ~pasted)  # the scene's object is the whole frame


def test_copy_paste_falls_back_to_the_paste_when_too_little_stays_visible():
    source = _copy_paste(occluded_target_probability=1.0, min_visible=0.95)
    image, target = source[0].load_image(), source[0].load_mask()
    np.testing.assert_array_equal(target, image[..., 0] > 0)


def test_copy_paste_skips_excluded_images_and_bad_settings():
    source = _copy_paste(exclude=[("obj", "obj0"), ("obj", "obj2"), ("scene", "scene1")])
    assert source.object_index == [(0, 1)]
    assert (0, 1) not in source.background_index and len(source.background_index) == 3
    with pytest.raises(ValueError, match="scale_range"):
        _copy_paste(scale_range=(0.5, 1.5))
    with pytest.raises(ValueError, match="at least one object"):
        _copy_paste(exclude=[("obj", f"obj{i}") for i in range(3)])


def test_training_run_keeps_held_out_images_out_of_copy_paste(monkeypatch):
    """The held-out split of the first source is excluded from the pasted objects of a later one."""
    import model.training.sources as sources
    from model.training.run import build_datasets

    real_build = sources.build_source

    def fake_build(spec):
        if spec["type"] == "ellipses":
            return EllipseSource(count=40)
        return real_build(spec)

    monkeypatch.setattr(sources, "build_source", fake_build)
    cfg = TrainConfig(out_dir="unused", preset="tiny", pretrained_backbone=False, crop_size=48, short_side=48,
                      holdout_fraction=0.25, holdout_seed=5,
                      sources=[{"type": "ellipses"},
                               {"type": "copy_paste", "objects": [{"type": "ellipses"}],
                                "backgrounds": [{"type": "ellipses"}], "count": 10}])
    dataset, held = build_datasets(cfg)
    held_ids = {held.image_id(i) for i in range(len(held))}
    assert len(held_ids) == 10
    copy_paste = dataset.sources[1]
    used = {copy_paste.objects[0].image_id(i) for _, i in copy_paste.object_index}
    assert used == {f"e{i}" for i in range(40)} - held_ids
    assert int(dataset[0]["num_clicks"]) >= 1
