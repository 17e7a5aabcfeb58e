import pickle

import pytest
import torch

from model.checkpoint import CheckpointMetadata, load_checkpoint, read_metadata, save_checkpoint
from model.config import preset
from model.errors import CheckpointError
from model.network.fcanet import FCANet


def test_metadata_round_trip(tmp_path):
    net = FCANet(preset("tiny"))
    meta = CheckpointMetadata(network=net.config, version="v1", provenance={"trained_on": ["x"], "steps": 3})
    save_checkpoint(tmp_path / "a.safetensors", net, meta)
    back = read_metadata(tmp_path / "a.safetensors")
    assert back == meta
    loaded, meta2 = load_checkpoint(tmp_path / "a.safetensors")
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)


def test_safetensors_without_our_metadata_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not an fcanet checkpoint"):
        load_checkpoint(tmp_path / "plain.safetensors")
