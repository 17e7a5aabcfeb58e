"""Averaging checkpoints of one network (model/weight_average.py)."""

from dataclasses import replace

import pytest
import torch

from model.checkpoint import CheckpointMetadata, file_digest, save_checkpoint
from model.config import preset
from model.errors import CheckpointError
from model.network.fcanet import FCANet
from model.weight_average import average_checkpoints


def _save(path, seed, *, config=None, trained_on=("COCO_MVal",), version=None, trained=None):
    torch.manual_seed(seed)
    net = FCANet(config or preset("tiny"))
    with torch.no_grad():  # BatchNorm statistics differ too, so their average is checked as well
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.num_batches_tracked.fill_(seed + 1)
    save_checkpoint(path, net, CheckpointMetadata(network=net.config, version=version or f"v{seed}", short_side=48,
                                                  provenance={"trained_on": list(trained_on),
                                                              **({} if trained is None else {"trained": trained})}))
    return net.state_dict()


def test_the_average_is_the_weighted_mean_of_every_float_tensor(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0, trained_on=["COCO_MVal", "BSDS500"])
    b = _save(tmp_path / "b.safetensors", 1, trained_on=["CCP", "COCO_MVal"])
    net, meta = average_checkpoints([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], [3, 1], version="soup")
    state = net.state_dict()
    for key, tensor in state.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, 0.75 * a[key] + 0.25 * b[key], rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(tensor, a[key])  # counters come from the first checkpoint
    assert not net.training
    assert meta.version == "soup" and meta.short_side == 48
    assert meta.provenance["trained_on"] == ["COCO_MVal", "BSDS500", "CCP"]
    assert [(x["version"], x["weight"]) for x in meta.provenance["averaged"]] == [("v0", 0.75), ("v1", 0.25)]
    assert meta.provenance["averaged"][1]["sha256"] == file_digest(tmp_path / "b.safetensors")
    assert meta.provenance["averaged"][1]["provenance"] == {"trained_on": ["CCP", "COCO_MVal"]}
    assert meta.provenance["trained"] is False  # neither part says it was trained: an average of them is not either


def test_uniform_weights_by_default(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0)
    b = _save(tmp_path / "b.safetensors", 1, trained=True)
    net, meta = average_checkpoints([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], version="soup")
    key = next(k for k, v in a.items() if v.is_floating_point())
    torch.testing.assert_close(net.state_dict()[key], (a[key] + b[key]) / 2)
    assert meta.describe()["trained"] is True  # one trained part makes a trained average


def test_different_networks_or_bad_weights_are_refused(tmp_path):
    _save(tmp_path / "a.safetensors", 0)
    other = replace(preset("tiny"), first_click_attention=not preset("tiny").first_click_attention)
    _save(tmp_path / "b.safetensors", 1, config=other)
    with pytest.raises(CheckpointError, match="not the same network"):
        average_checkpoints([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], version="soup")
    _save(tmp_path / "c.safetensors", 2)
    with pytest.raises(CheckpointError, match="one non-negative weight"):
        average_checkpoints([tmp_path / "a.safetensors", tmp_path / "c.safetensors"], [1.0], version="soup")
    with pytest.raises(CheckpointError, match="at least two"):
        average_checkpoints([tmp_path / "a.safetensors"], version="soup")
