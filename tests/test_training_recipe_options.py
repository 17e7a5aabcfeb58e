"""Recipe options taken from fine-tuning: crops around the anchor and robot click sequences."""

import numpy as np

from model.robot_user import first_click
from model.training.augment import AugmentConfig, augment_with_anchor
from model.training.config import TrainConfig
from model.training.dataset import MixedObjectDataset
from model.training.sources.base import ObjectSample
from model.training.trainer import Trainer
from training_fixtures import EllipseSource

STILL = dict(flip_probability=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


def _bar():
    """A 300-px-long bar in a (100, 320) image whose pixels encode their own (x, y)."""
    yy, xx = np.mgrid[:100, :320]
    image = np.stack([xx % 256, yy, xx // 256], axis=-1).astype(np.uint8)
    mask = np.zeros((100, 320), bool)
    mask[40:60, 10:310] = True
    return image, mask


def _where(image, x, y):
    r, g, b = (int(v) for v in image[int(y), int(x)])
    return r + 256 * b, g


def test_anchor_crop_holds_the_whole_objects_central_point():
    image, mask = _bar()
    centre = first_click(mask)
    cfg = AugmentConfig(crop_size=64, short_side=100, scale_range=(1.0, 1.0), anchor_crop=True, **STILL)
    for seed in range(8):
        crop, crop_mask, anchor = augment_with_anchor(image, mask, np.random.default_rng(seed), cfg)
        assert anchor is not None and crop_mask[int(anchor.y), int(anchor.x)]
        assert _where(crop, anchor.x, anchor.y) == (int(centre.x), int(centre.y))


def test_anchor_crop_follows_a_flip():
    image, mask = _bar()
    centre = first_click(mask)
    cfg = AugmentConfig(crop_size=64, short_side=100, scale_range=(1.0, 1.0), anchor_crop=True,
                        **{**STILL, "flip_probability": 1.0})
    crop, _, anchor = augment_with_anchor(image, mask, np.random.default_rng(0), cfg)
    assert _where(crop, anchor.x, anchor.y) == (int(centre.x), int(centre.y))


def test_default_crop_has_no_anchor_and_centres_on_the_cropped_part():
    image, mask = _bar()
    cfg = AugmentConfig(crop_size=64, short_side=100, scale_range=(1.0, 1.0), **STILL)
    _, _, anchor = augment_with_anchor(image, mask, np.random.default_rng(0), cfg)
    assert anchor is None


class _Bar:
    name = "bar"

    def __len__(self):
        return 1

    def image_id(self, i):
        return "bar"

    def __getitem__(self, i):
        image, mask = _bar()
        return ObjectSample(self.name, "bar", lambda: image, lambda: mask)


def test_dataset_first_click_is_the_anchor_with_anchor_crops():
    image, mask = _bar()
    centre = (int(first_click(mask).x), int(first_click(mask).y))
    def first_clicks(anchor_crop):
        cfg = AugmentConfig(crop_size=64, short_side=100, scale_range=(1.0, 1.0), anchor_crop=anchor_crop, **STILL)
        data = MixedObjectDataset([_Bar()], [1.0], length=8, seed=0, augment_cfg=cfg)
        hits = []
        for g in range(8):
            item = data[g]
            x, y = item["clicks"][0, :2].tolist()
            crop = item["image"].permute(1, 2, 0).numpy()
            hits.append(_where(crop, x, y) == centre)
        return hits
    assert all(first_clicks(True))
    assert not all(first_clicks(False))  # crops of part of the bar click the part's centre


def _trainer(tmp_path, **kw):
    cfg = TrainConfig(out_dir=str(tmp_path), preset="tiny", pretrained_backbone=False, crop_size=48, batch_size=4,
                      steps=4, short_side=48, iterative_max_extra_clicks=2, iterative_probability=0.0, **kw)
    data = MixedObjectDataset([EllipseSource()], [1.0], length=6, seed=0, augment_cfg=AugmentConfig(crop_size=48))
    return Trainer(cfg, data)


def test_robot_sequences_give_every_sample_the_same_rounds_from_zero(tmp_path):
    trainer = _trainer(tmp_path, robot_sequences=True)
    batch = trainer.load_batch(0)
    from model.clicks import Click
    from model.training.batch import clicks_from_rows

    gts = batch["gt"][:, 0].numpy() > 0.5
    added = set()
    for seed in range(12):
        firsts = [[clicks_from_rows(r, 1)[0]] for r in batch["clicks"]]
        out = trainer.add_iterative_clicks(batch["image"], gts, firsts, np.random.default_rng(seed))
        extra = [len(c) - 1 for c in out]
        assert len(set(extra)) <= 2  # a sample the model already gets right takes no more clicks
        added.add(max(extra))
        assert all(isinstance(c, Click) for seq in out for c in seq)
    assert 0 in added and max(added) >= 1
    # Off (iterative_probability 0 here): no sample is ever chosen.
    plain = _trainer(tmp_path / "plain")
    firsts = [[clicks_from_rows(r, 1)[0]] for r in batch["clicks"]]
    assert all(len(c) == 1 for c in plain.add_iterative_clicks(batch["image"], gts, firsts, np.random.default_rng(0)))


def test_robot_sequences_start_every_sample_from_its_first_click_alone(monkeypatch):
    import model.training.sources as sources
    from model.training.run import build_datasets

    monkeypatch.setattr(sources, "build_source", lambda spec: EllipseSource())
    cfg = TrainConfig(out_dir="unused", preset="tiny", pretrained_backbone=False, crop_size=48, short_side=48,
                      robot_sequences=True, anchor_crops=True, sources=[{"type": "ellipses"}])
    dataset, _ = build_datasets(cfg)
    assert all(int(dataset[i]["num_clicks"]) == 1 for i in range(6))
    assert dataset.augment_cfg.anchor_crop
