"""ResNet-101 and Res2Net-101 backbones: layout, strides, dilations, sizes, no ImageNet weights.

Each 42M-parameter backbone is built once for this module; structural checks read its
modules, and one forward pass on a small odd-sized input checks F1 / F4.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model.errors import FcanetInputError
from model.network.backbones import Backbone, build_backbone
from model.network.backbones.res2net import Bottle2neck, build_res2net101
from model.network.backbones.resnet import Bottleneck, build_resnet101
from model.network.fusion import fold_batchnorm

BUILDERS = {"resnet101": build_resnet101, "res2net101": build_res2net101}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def backbone(request) -> tuple[str, Backbone]:
    """A real (CPU, random-initialised) backbone in eval mode, for the forward pass."""
    torch.manual_seed(0)
    bb = BUILDERS[request.param](in_channels=5)
    bb.pre.eval(), bb.last.eval()
    return request.param, bb


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def meta_backbone(request) -> tuple[str, Backbone]:
    """The same layout on the meta device: instant, no memory, for structural checks."""
    with torch.device("meta"):
        return request.param, BUILDERS[request.param](in_channels=5)


def _ceil_div(n: int, d: int) -> int:
    return -(-n // d)


def test_forward_gives_f1_at_stride_4_and_f4_at_stride_16(backbone):
    name, bb = backbone
    assert (bb.low_channels, bb.high_channels) == (256, 2048)
    h, w = 66, 70  # odd multiples on purpose: every stride-2 op must round up the same way
    with torch.no_grad():
        f1 = bb.pre(torch.rand(1, 5, h, w))
        f4 = bb.last(f1)
    assert f1.shape == (1, 256, _ceil_div(h, 4), _ceil_div(w, 4)), name
    assert f4.shape == (1, 2048, _ceil_div(h, 16), _ceil_div(w, 16)), name
    assert torch.isfinite(f4).all()


def test_stage_depths_are_resnet_101(meta_backbone):
    _, bb = meta_backbone
    depths = [len(bb.pre.layer1), len(bb.last.layer2), len(bb.last.layer3), len(bb.last.layer4)]
    assert depths == [3, 4, 23, 3]


def _three_by_threes(block: nn.Module) -> list[nn.Conv2d]:
    if isinstance(block, Bottleneck):
        return [block.conv2]
    return list(block.convs)


def test_layer4_is_dilated_with_multi_grid_and_only_layer2_layer3_stride(meta_backbone):
    _, bb = meta_backbone
    for layer, stride in [(bb.pre.layer1, 1), (bb.last.layer2, 2), (bb.last.layer3, 2), (bb.last.layer4, 1)]:
        first = _three_by_threes(layer[0])
        assert all(c.stride == (stride, stride) for c in first)
        assert all(c.stride == (1, 1) for block in layer[1:] for c in _three_by_threes(block))
    for layer in (bb.pre.layer1, bb.last.layer2, bb.last.layer3):
        assert {c.dilation for block in layer for c in _three_by_threes(block)} == {(1, 1)}
    layer4_dilations = [{c.dilation[0] for c in _three_by_threes(block)} for block in bb.last.layer4]
    assert layer4_dilations == [{2}, {4}, {8}]
    for block in bb.last.layer4:  # "same" padding keeps the stride-16 size
        assert all(c.padding == c.dilation for c in _three_by_threes(block))


def test_stems_take_five_channels():
    with torch.device("meta"):
        r = build_resnet101(in_channels=5)
        r2 = build_res2net101(in_channels=5)
    conv1 = r.pre.conv1
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride) == (5, 64, (7, 7), (2, 2))
    deep = [m for m in r2.pre.conv1 if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in deep] == [
        (5, 32, (3, 3), (2, 2)), (32, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1))
    ]


def test_res2net_v1b_shortcuts_average_pool_and_stage_blocks_pool_only_when_striding():
    with torch.device("meta"):
        bb = build_res2net101()
    layers = [bb.pre.layer1, bb.last.layer2, bb.last.layer3, bb.last.layer4]
    for layer, stride in zip(layers, (1, 2, 2, 1)):
        pool, conv = layer[0].downsample[0], layer[0].downsample[1]
        assert isinstance(pool, nn.AvgPool2d) and pool.kernel_size == stride and pool.ceil_mode
        assert not pool.count_include_pad and conv.stride == (1, 1)
        assert layer[0].first_of_stage and not any(b.first_of_stage for b in layer[1:])
        assert (layer[0].pool is not None) == (stride > 1)
        assert all(b.downsample is None for b in layer[1:])
    assert [b.width for b in (layers[0][0], layers[1][0], layers[2][0], layers[3][0])] == [26, 52, 104, 208]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_pretrained_weights_are_refused_with_a_pointer_to_the_official_loader(name):
    with pytest.raises(FcanetInputError, match="load_official_checkpoint"):
        BUILDERS[name](pretrained=True)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_registry_builds_the_backbone(name):
    with torch.device("meta"):
        bb = build_backbone(name, in_channels=5)
    assert isinstance(bb, Backbone) and bb.high_channels == 2048


def _randomise_batchnorm(module: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t, lo, hi in [(m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2), (m.running_mean, -0.2, 0.2),
                              (m.running_var, 0.5, 2.0)]:
                t.data.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)


@pytest.mark.parametrize(
    "block",
    [
        lambda: Bottleneck(64, 16, stride=2, downsample=nn.Sequential(nn.Conv2d(64, 64, 1, 2, bias=False), nn.BatchNorm2d(64))),
        lambda: Bottle2neck(64, 16, stride=2, dilation=1, first_of_stage=True, base_width=26,
                            downsample=nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(64, 64, 1, bias=False), nn.BatchNorm2d(64))),
        lambda: Bottle2neck(64, 16, dilation=4),
    ],
    ids=["bottleneck", "bottle2neck-stage", "bottle2neck-normal"],
)
def test_blocks_keep_conv_bn_pairs_adjacent_so_batchnorm_folding_is_exact(block):
    torch.manual_seed(0)
    b = block().eval()
    _randomise_batchnorm(b)
    x = torch.rand(2, 64, 9, 11)
    with torch.no_grad():
        expected, folded = b(x), fold_batchnorm(b)(x)
    assert expected.shape == (2, 64, *expected.shape[2:])
    torch.testing.assert_close(folded, expected, rtol=1e-4, atol=1e-5)
    assert any(isinstance(m, nn.Identity) for m in fold_batchnorm(b).modules())


def test_res2net_normal_block_passes_each_group_to_the_next():
    """Hierarchical residual: in a normal block, group 0's 3x3 output feeds group 1's input;
    in a stage block it does not. Zeroing convs[0] must change the other groups' output only
    in the normal block."""
    torch.manual_seed(0)
    normal, stage = Bottle2neck(64, 16), Bottle2neck(64, 16, first_of_stage=True)
    stage.load_state_dict(normal.state_dict())
    x = torch.rand(1, 64, 8, 8)

    def group_outputs(block: Bottle2neck) -> torch.Tensor:
        seen = []
        handle = block.conv3.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
        block.eval()
        with torch.no_grad():
            block(x)
        handle.remove()
        return seen[0]

    before = {"normal": group_outputs(normal), "stage": group_outputs(stage)}
    for block in (normal, stage):
        block.convs[0].weight.data.zero_()
    after = {"normal": group_outputs(normal), "stage": group_outputs(stage)}
    w = normal.width
    assert not torch.allclose(before["normal"][:, w:2 * w], after["normal"][:, w:2 * w])
    torch.testing.assert_close(before["stage"][:, w:], after["stage"][:, w:])
