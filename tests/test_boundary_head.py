import pytest
import torch

from model.checkpoint import CheckpointMetadata, load_checkpoint, save_checkpoint
from model.config import preset
from model.network.boundary_head import BoundaryHead, grow_boundary_head
from model.network.fcanet import FCANet


def _inputs(h=33, w=47):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, h, w, generator=g)
    pos, neg, first = (torch.rand(1, 1, h, w, generator=g) for _ in range(3))
    return image, pos, neg, first


def test_a_grown_head_predicts_what_the_network_did_until_it_is_trained():
    torch.manual_seed(0)
    net = FCANet(preset("tiny")).eval()
    grown = grow_boundary_head(net, 8).eval()
    assert grown.config.boundary_channels == 8 and net.config.boundary_channels == 0
    with torch.no_grad():
        before, after = net(*_inputs()).logits, grown(*_inputs()).logits
    assert after.shape == before.shape == (1, 1, 33, 47)
    assert torch.equal(before, after)
    # Every weight but the head's came along.
    for name, value in net.state_dict().items():
        assert torch.equal(grown.state_dict()[name], value)


def test_a_trained_head_changes_the_logits_at_stride_two_and_survives_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = grow_boundary_head(FCANet(preset("tiny")), 8)
    with torch.no_grad():
        net.boundary_head.out.weight.normal_()
    net.eval()
    with torch.no_grad():
        changed = net(*_inputs()).logits
        plain = FCANet(net.config.with_(boundary_channels=0))
        plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("boundary_head.")})
        assert not torch.allclose(changed, plain.eval()(*_inputs()).logits, atol=1e-3)
    path = tmp_path / "grown.safetensors"
    save_checkpoint(path, net, CheckpointMetadata(network=net.config, version="grown", short_side=48))
    loaded, meta = load_checkpoint(path)
    assert meta.network.boundary_channels == 8
    with torch.no_grad():
        assert torch.allclose(loaded(*_inputs()).logits, changed, atol=1e-5)


def test_the_head_works_at_stride_two_of_odd_sizes():
    head = BoundaryHead(4).eval()
    with torch.no_grad():
        out = head(torch.randn(2, 5, 33, 47), torch.randn(2, 1, 9, 12))
    assert out.shape == (2, 1, 17, 24)


def test_a_checkpoint_start_refuses_shape_overrides_it_cannot_honour(tmp_path):
    from model.training.config import TrainConfig
    from model.training.trainer import build_network

    net = FCANet(preset("tiny"))
    path = tmp_path / "base.safetensors"
    save_checkpoint(path, net, CheckpointMetadata(network=net.config, version="base", short_side=48))
    with pytest.raises(ValueError, match="first_click_attention"):
        build_network(TrainConfig(init_checkpoint=str(path), network_overrides={"first_click_attention": False}))
    # what the checkpoint already is, and a new boundary head, are fine
    same, _ = build_network(TrainConfig(init_checkpoint=str(path), network_overrides={"first_click_attention": True}))
    grown, origin = build_network(TrainConfig(init_checkpoint=str(path), network_overrides={"boundary_channels": 4}))
    assert same.config == net.config and grown.config.boundary_channels == 4 and origin["grown"] == {"boundary_channels": 4}


@pytest.mark.parametrize("channels", [0, 4, 16])
def test_growing_never_removes_or_replaces_a_head_it_already_has(channels):
    net = grow_boundary_head(FCANet(preset("tiny")), 8)
    assert grow_boundary_head(net, 8) is net
    with pytest.raises(ValueError, match="8"):
        grow_boundary_head(net, channels)


def test_a_head_needs_a_channel():
    with pytest.raises(ValueError, match="at least 1 channel"):
        grow_boundary_head(FCANet(preset("tiny")), -1)
