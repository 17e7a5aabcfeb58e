"""Wiring a TrainConfig into a Trainer: data sources, the held-out split, validation."""

from __future__ import annotations

from typing import Any

from .config import TrainConfig
from .trainer import Trainer


def training_sources(cfg: TrainConfig):
    """(training sources, their weights, held-out validation objects or None).

    The held-out split is taken by image from source `holdout_source`, so no image is in both.
    """
    from .sources import build_source, split_holdout

    if not cfg.sources:
        raise ValueError("the training config lists no data sources")
    built: dict[int, tuple[object, float]] = {}
    val_view = None
    # The held-out source first: sources that draw on other images (copy_paste) must skip its
    # held-out images, wherever they stand in the list.
    order = sorted(range(len(cfg.sources)), key=lambda i: i != cfg.holdout_source)
    for i in order:
        spec = dict(cfg.sources[i])
        weight = float(spec.pop("weight", 1.0))
        if spec.get("type") == "copy_paste" and val_view is not None:
            held = [(val_view.name, val_view.image_id(k)) for k in range(len(val_view))]
            spec["exclude"] = [*spec.get("exclude", []), *held]
        source = build_source(spec)
        if i == cfg.holdout_source and cfg.holdout_fraction > 0:
            source, val_view = split_holdout(
                source, cfg.holdout_fraction, cfg.seed if cfg.holdout_seed is None else cfg.holdout_seed)
        built[i] = (source, weight)
    sources = [built[i][0] for i in range(len(cfg.sources))]
    weights = [built[i][1] for i in range(len(cfg.sources))]
    return sources, weights, val_view


def build_datasets(cfg: TrainConfig):
    """(training dataset, held-out validation objects); see `training_sources`."""
    from .augment import AugmentConfig
    from .click_sampler import ClickSimulationConfig
    from .dataset import MixedObjectDataset

    sources, weights, val_view = training_sources(cfg)
    dataset = MixedObjectDataset(
        sources, weights, length=max(1, sum(len(s) for s in sources)), seed=cfg.seed,
        augment_cfg=AugmentConfig(crop_size=cfg.crop_size, short_side=cfg.resize_short_side,
                                  scale_range=cfg.scale_range, anchor_crop=cfg.anchor_crops),
        click_cfg=ClickSimulationConfig(
            first_click_only_probability=1.0 if cfg.robot_sequences else cfg.first_click_only_probability),
    )
    return dataset, val_view


def make_validator(cfg: TrainConfig, val_view):
    """A function (network, metadata) -> {"noc85", "noc90", "miou_per_click", ...} on held-out objects,
    scored by the robot user of the evaluation protocol."""
    if val_view is None or cfg.val_samples <= 0:
        return None
    from ..predictor import Predictor
    from ..predictor_flags import OUTPUT_MODES
    from .validation import robot_noc

    count = min(cfg.val_samples, len(val_view))
    objects = [val_view[i] for i in range(count)]
    samples = [(o.load_image(), o.load_mask()) for o in objects]

    def validate(network, metadata) -> dict[str, Any]:
        # The network's own output, as the paper scores it: the log tracks training, not post-processing.
        predictor = Predictor(network, metadata, short_side=cfg.short_side, **OUTPUT_MODES["network"])
        return robot_noc(predictor, samples, max_clicks=cfg.val_max_clicks)

    return validate


def build_trainer(cfg: TrainConfig) -> Trainer:
    dataset, val_view = build_datasets(cfg)
    return Trainer(cfg, dataset, validate=make_validator(cfg, val_view))
