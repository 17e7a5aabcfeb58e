"""The whole-object fine-tuning stage's two pieces of logic: which objects become corrections, and how
a candidate is written as a bundle (scripts/finetune_from_training_data.py)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import CheckpointMetadata, load_checkpoint, read_metadata, save_checkpoint
from model.config import preset
from model.network.fcanet import FCANet
from model.training.sources.base import ObjectSample

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("ft_from_training", ROOT / "scripts" / "finetune_from_training_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SquaresSource:
    """Objects of known size: square i covers (20 + 8 i)^2 pixels of a 128x128 image (2.4-71 %)."""
    name = "squares"
    images_read = 0

    def __len__(self):
        return 12

    def __getitem__(self, i):
        def mask(i=i):
            m = np.zeros((128, 128), bool)
            side = 20 + 8 * i
            m[:side, :side] = True
            return m
        def image():
            SquaresSource.images_read += 1
            return np.zeros((128, 128, 3), np.uint8)
        return ObjectSample(self.name, f"s{i}", image, mask)


def test_pick_objects_keeps_only_objects_that_cover_enough_of_their_image(monkeypatch):
    script = _script()
    import model.training.run as run

    monkeypatch.setattr(run, "training_sources", lambda cfg: ([SquaresSource()], [1.0], None))
    monkeypatch.setattr(SquaresSource, "images_read", 0)
    everything = script.pick_objects(cfg=None, count=10, seed=0)
    assert min(o.load_mask().mean() for _, o in everything) < 0.1  # without the filter small objects come too
    large = script.pick_objects(cfg=None, count=6, seed=0, min_area_fraction=0.25)
    fractions = [o.load_mask().mean() for _, o in large]
    assert len(large) == 6 and min(fractions) >= 0.25
    assert len({name for name, _ in large}) == 6  # no object twice
    with pytest.raises(ValueError, match="only 6"):
        script.pick_objects(cfg=None, count=7, seed=0, min_area_fraction=0.25)
    assert SquaresSource.images_read == 0  # photos are read when clicked, not all at once when picked


def test_write_bundle_names_the_real_training_data_and_keeps_the_weights(tmp_path):
    script = _script()
    torch.manual_seed(0)
    net = FCANet(preset("tiny"))
    base, candidate = tmp_path / "base.safetensors", tmp_path / "cand.safetensors"
    save_checkpoint(base, net, CheckpointMetadata(network=net.config, version="base-0", short_side=48,
                                                  provenance={"trained_on": ["COCO_MVal", "BSDS500"]}))
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    save_checkpoint(candidate, net, CheckpointMetadata(
        network=net.config, version="ft-1-step3", short_side=48,
        provenance={"trained_on": ["BSDS500", "COCO_MVal", "corrections"], "recipe": {"lr": 0.005}}))
    config = tmp_path / "objects.yaml"
    config.write_text("sources:\n  - {type: coco_mval, root: x}\ntrained_on: [COCO_MVal, CCP]\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({
        "command": "python scripts/finetune_from_training_data.py ...", "base": str(base), "candidate": str(candidate),
        "corrections": ["coco_mval:1", "ccp:2"], "config": {"config": str(config), "min_area_fraction": 0.1}}))

    out = tmp_path / "bundle.safetensors"
    script.write_bundle(run, "effl0-whole-objects", out)

    meta = read_metadata(out)
    assert meta.version == "effl0-whole-objects"
    assert meta.provenance["trained_on"] == ["COCO_MVal", "BSDS500", "CCP"]  # no "corrections": they are that data
    assert meta.provenance["stage"]["objects"] == 2 and meta.provenance["stage"]["min_area_fraction"] == 0.1
    assert meta.provenance["stage"]["candidate_version"] == "ft-1-step3"
    bundled, _ = load_checkpoint(out)
    original, _ = load_checkpoint(candidate)
    for a, b in zip(bundled.state_dict().values(), original.state_dict().values()):
        assert torch.equal(a, b)


def test_bundle_mode_needs_a_version_and_a_destination(tmp_path, monkeypatch, capsys):
    script = _script()
    monkeypatch.setattr("sys.argv", ["x", "--bundle-from", str(tmp_path)])
    with pytest.raises(SystemExit):
        script.main()
    assert "--bundle-version" in capsys.readouterr().err


def test_an_interrupted_run_resumes_after_the_objects_it_already_clicked(tmp_path):
    from model.corrections import open_store

    script = _script()
    store = open_store(tmp_path / "store")
    names = ["coco_mval:1", "ccp:7", "bsds500:3"]
    mask = np.zeros((16, 16), bool)
    mask[4:9, 4:9] = True
    assert script.objects_already_clicked(store, names) == 0
    for name in names[:2]:
        store.add(source="gradio", image=np.zeros((16, 16, 3), np.uint8), mask=mask, project="training-data",
                  task_id=name, clicks=[{"x": 6, "y": 6, "positive": True}], author="robot")
    assert script.objects_already_clicked(store, names) == 2
    with pytest.raises(ValueError, match="not the first objects of this run"):
        script.objects_already_clicked(store, ["ccp:7", "coco_mval:1", "bsds500:3"])
