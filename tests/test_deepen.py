import pytest
import torch

from model.checkpoint import CheckpointMetadata, load_checkpoint, read_metadata, save_checkpoint
from model.config import preset
from model.network.backbones.efficientnet_lite import REPEATS, pretrained_path, stage_blocks
from model.network.deepen import calibrate_new_blocks, deepen_backbone, new_block_prefixes, new_blocks
from model.network.fcanet import FCANet
from model.training.trainer import Trainer, build_network
from test_training_trainer import _cfg, _dataset

LITE1 = "efficientnet_lite1"


def _inputs(h=49, w=65, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(1, 3, h, w, generator=g)
    pos, neg, first = (torch.rand(1, 1, h, w, generator=g) for _ in range(3))
    return image, pos, neg, first


def _lite0():
    """A Lite0 FCA-Net with non-trivial BatchNorm statistics, as a trained one has."""
    torch.manual_seed(0)
    net = FCANet(preset("efficientnet_lite0"))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


def _count_blocks(net):
    return len(net.backbone_pre._blocks) + len(net.backbone_last._blocks)


def test_a_deepened_network_predicts_what_the_lite0_network_did():
    net = _lite0()
    deep = deepen_backbone(net, LITE1).eval()
    assert deep.config.backbone == "efficientnet_lite1" and net.config.backbone == "efficientnet_lite0"
    assert _count_blocks(net) == sum(REPEATS["lite0"]) and _count_blocks(deep) == sum(REPEATS["lite1"])
    with torch.no_grad():
        before, after = net(*_inputs(), with_aux=True), deep(*_inputs(), with_aux=True)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.first_logits, after.first_logits)
    # Lite0's stage 3 starts at block 5, Lite1's at block 7: a block keeps its place in its stage.
    small = net.state_dict()["backbone_last._blocks.5._depthwise_conv.weight"]
    assert torch.equal(deep.state_dict()["backbone_last._blocks.7._depthwise_conv.weight"], small)
    assert torch.equal(deep.state_dict()["my_aspp.conv1.weight"], net.state_dict()["my_aspp.conv1.weight"])


def test_the_added_blocks_are_live_once_their_scale_moves():
    deep = deepen_backbone(_lite0(), LITE1).eval()
    with torch.no_grad():
        before = deep(*_inputs()).logits
        new_blocks(deep)[2]._bn2.weight.fill_(1.0)
        after = deep(*_inputs()).logits
    assert not torch.allclose(before, after)


def test_the_added_blocks_are_the_last_of_stages_one_to_five():
    lite1 = stage_blocks("lite1")
    assert new_block_prefixes() == [f"backbone_pre._blocks.{lite1[1][-1]}."] + [
        f"backbone_last._blocks.{stage[-1]}." for stage in lite1[2:6]]


def test_calibration_sets_only_the_added_blocks_statistics_and_keeps_the_output():
    net = _lite0()
    deep = deepen_backbone(net, LITE1).eval()
    prefixes = tuple(new_block_prefixes())
    stats = {k: v.clone() for k, v in deep.state_dict().items() if "running_" in k}
    with torch.no_grad():
        before = deep(*_inputs()).logits
    assert calibrate_new_blocks(deep, [_inputs(seed=s) for s in range(1, 4)]) == 3
    with torch.no_grad():
        after = deep(*_inputs()).logits
    assert torch.equal(before, after) and not deep.training
    now = deep.state_dict()
    changed = {k for k, v in stats.items() if not torch.equal(v, now[k])}
    assert changed and all(k.startswith(prefixes) for k in changed)
    assert any(k.startswith(prefixes) and k.endswith("running_var") for k in changed)


def test_only_lite0_deepens_only_to_lite1_and_lite1_stays_itself():
    with pytest.raises(ValueError, match="only efficientnet_lite0 -> efficientnet_lite1"):
        deepen_backbone(FCANet(preset("tiny")), LITE1)
    with pytest.raises(ValueError, match="only efficientnet_lite0 -> efficientnet_lite1"):
        deepen_backbone(_lite0(), "resnet101")
    deep = deepen_backbone(_lite0(), LITE1)
    assert deepen_backbone(deep, LITE1) is deep


def test_lite1_imagenet_weights_load_into_its_blocks():
    backbone = FCANet(preset("efficientnet_lite1"), pretrained_backbone=True)
    state = torch.load(pretrained_path("lite1"), map_location="cpu", weights_only=True)
    assert torch.equal(backbone.backbone_pre._blocks[3]._project_conv.weight, state["_blocks.3._project_conv.weight"])
    assert torch.equal(backbone.backbone_last._blocks["20"]._project_conv.weight, state["_blocks.20._project_conv.weight"])
    # RGB keeps ImageNet's stem filters; the click channels get their own.
    assert torch.equal(backbone.backbone_pre._conv_stem.weight[:, :3], state["_conv_stem.weight"])


def test_a_checkpoint_start_deepens_calibrates_and_trains_a_lite1_network(tmp_path):
    net = _lite0()
    base = tmp_path / "lite0.safetensors"
    save_checkpoint(base, net, CheckpointMetadata(network=net.config, version="lite0", short_side=48))
    with pytest.raises(ValueError, match="only efficientnet_lite0 -> efficientnet_lite1"):
        build_network(_cfg(tmp_path / "x", init_checkpoint=str(base), network_overrides={"backbone": "resnet101"}))
    trainer = Trainer(_cfg(tmp_path / "run", init_checkpoint=str(base), freeze_batchnorm=True,
                           network_overrides={"backbone": "efficientnet_lite1"}), _dataset())
    assert trainer.origin["deepened"] == {"backbone": "efficientnet_lite1"}
    var = trainer.network.state_dict()["backbone_pre._blocks.3._bn1.running_var"].clone()
    assert torch.equal(var, torch.ones_like(var))  # not calibrated before training starts
    trainer.fit(max_steps=1, progress=False)
    saved, _ = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert read_metadata(tmp_path / "run" / "last.safetensors").network.backbone == "efficientnet_lite1"
    calibrated = saved.state_dict()["backbone_pre._blocks.3._bn1.running_var"]
    assert not torch.allclose(calibrated, torch.ones_like(calibrated))
