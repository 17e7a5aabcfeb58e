"""Training configuration: one frozen dataclass, YAML overrides that reject unknown keys."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

#: Training precisions: the autocast dtype of each (None: plain float32).
PRECISIONS = {"fp32": None, "bf16": "bfloat16"}
#: Training devices (see `TrainConfig.device`).
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. Paths are resolved relative to the working directory.

    sources: list of data-source specs, each a dict with "type", its own keys and "weight"
    (see `model.training.sources.build_source`).
    """

    out_dir: str = "runs/default"
    preset: str = "efficientnet_lite0"
    network_overrides: dict[str, Any] = field(default_factory=dict)
    pretrained_backbone: bool = True
    init_checkpoint: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    holdout_fraction: float = 0.05
    holdout_source: int = 0
    #: Seed of the held-out split; None uses `seed`, as campaigns 1-13 did, so each of them held out
    #: other images (and trained on its predecessors' held-out ones). Fix it for comparable figures.
    holdout_seed: int | None = None
    crop_size: int = 320
    #: Crops of 16k + 1 pixels, recorded in the checkpoint so that inference pads its working
    #: image to 16k + 1 too (`model/preprocess.py` grid_padding). Needs such a crop_size.
    grid_align: bool = False
    resize_short_side: int | None = None
    scale_range: tuple[float, float] = (0.75, 1.4)
    batch_size: int = 8
    steps: int = 30000
    lr: float = 0.07
    backbone_lr_ratio: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    constant_tail_fraction: float = 0.1
    loss: str = "click"
    #: Weight of the first-click head's loss in the total (the paper: 1.0, general + first).
    first_loss_weight: float = 1.0
    #: Share of samples that get only their first click before iterative training adds the robot's
    #: (`model/training/click_sampler.py`); 0, the paper, draws 1-10 positives and 0-10 negatives for all.
    first_click_only_probability: float = 0.0
    #: Crops hold the whole object's most central point (the robot's first click, found before
    #: cropping) at a random place, and that point is the sample's first click, as in fine-tuning
    #: (`model/finetune/data.py`). Off: crops centre on a random object pixel and the first click is
    #: the centre of the object's cropped part.
    anchor_crops: bool = False
    #: Every sample is a robot user's click sequence, as the benchmarks and the fine-tuning's
    #: recorded corrections are: the first click alone, then 0 to iterative_max_extra_clicks
    #: corrections of the model's own errors (`Trainer.add_iterative_clicks`). Overrides
    #: first_click_only_probability and iterative_probability. Off: the paper's random clicks, and
    #: iterative clicks for a share of the batch.
    robot_sequences: bool = False
    iterative_probability: float = 0.7
    iterative_max_extra_clicks: int = 3
    iterative_threshold: float = 0.2
    #: Decay of the moving average of the weights that checkpoints and validation use;
    #: 0 (the paper) keeps the raw weights. See `model/training/ema.py`.
    ema_decay: float = 0.0
    #: Keep BatchNorm layers on their running statistics (eval mode) while the rest trains.
    #: Off for training from ImageNet; fine-tuning on a few corrections at batch 4 turns it on,
    #: because batch statistics of 4 crops would overwrite what the base model learned.
    freeze_batchnorm: bool = False
    #: NHWC tensors: the depthwise convolutions of the EfficientNet backbone run about 1.4x
    #: faster that way on CPU (5.1 -> 3.8 s for one batch-8 320-px step on 2 cores here).
    channels_last: bool = True
    #: "bf16" runs forward and backward passes under torch.autocast in bfloat16 (weights, the
    #: optimiser and the loss reduction stay float32); "fp32" (the default, the paper) does not.
    #: On CPUs with AVX512-BF16 the forward and backward pass of a batch of 4 513-px crops takes
    #: 1.1-1.3 s instead of 1.7-2.1 s here; a whole training step 1.3-1.4 s instead of 1.5-2.0 s.
    precision: str = "fp32"
    seed: int = 0
    #: Where the network trains: "auto" (CUDA when there is a GPU, else the CPU), "cpu" or "cuda".
    device: str = "auto"
    #: Data-loader worker processes that build the augmented, clicked crops (0: in the training
    #: process, as on the 2-core CPU). On a GPU the crops are the bottleneck: give it the cores.
    num_workers: int = 0
    #: Processes that compute the robot user's corrective clicks of iterative training (0: in the
    #: training process). Same clicks either way; on a GPU's large batches they are the bottleneck.
    robot_workers: int = 0
    #: Wall-clock budget of one `fit` in seconds (None: none): training stops, saves and returns
    #: before a step would end past it. With `anneal_by_time` the poly schedule runs on the
    #: larger of step/steps and elapsed/time_budget_s, so a run cut by the clock still ends on a
    #: small learning rate however fast the machine turns out to be.
    time_budget_s: float | None = None
    anneal_by_time: bool = False
    threads: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    #: Also keep the deployable weights of every N-th step as OUT_DIR/step<N>.safetensors (0: off),
    #: so that a campaign's checkpoints can be scored on the benchmarks after it ends.
    snapshot_every: int = 0
    val_every: int = 500
    val_samples: int = 30
    val_max_clicks: int = 10
    short_side: int = 512
    version_prefix: str = "effl0"
    trained_on: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from ..preprocess import OUTPUT_STRIDE, aligned_size

        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {list(DEVICES)}, got {self.device!r}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be positive seconds, got {self.time_budget_s}")
        if self.anneal_by_time and self.time_budget_s is None:
            raise ValueError("anneal_by_time needs a time_budget_s")
        if not self.first_loss_weight >= 0:
            raise ValueError(f"first_loss_weight must be 0 or more, got {self.first_loss_weight}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.grid_align and aligned_size(self.crop_size) != self.crop_size:
            raise ValueError(f"grid_align needs a crop_size of {OUTPUT_STRIDE}k + 1 pixels (e.g. "
                             f"{aligned_size(self.crop_size)}), got {self.crop_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        if "scale_range" in data:
            data["scale_range"] = tuple(data["scale_range"])
        return TrainConfig(**data)

    @staticmethod
    def from_yaml(path: str | Path, **overrides: Any) -> "TrainConfig":
        """Read a YAML config; `extends: OTHER.yaml` (relative to this file) starts from OTHER's
        keys, so that a campaign states only what it changes."""
        data = read_yaml_chain(Path(path))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig.from_dict(data)


def read_yaml_chain(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The keys of `path` over those of the file it extends, recursively."""
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ValueError(f"training configs extend each other in a cycle: {chain}")
    if not path.is_file():
        raise ValueError(f"training config not found: {path}")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a training config is a mapping of keys to values")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ValueError(f"{path}: 'extends' names one YAML file, got {parent!r}")
    base = read_yaml_chain(path.parent / parent, (*seen, resolved))
    base.update(data)
    return base
