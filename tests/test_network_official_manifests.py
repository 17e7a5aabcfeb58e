"""The paper's networks against the authors' released state_dict manifests, and the loader of
their `.pth` checkpoints (`model.network.official`).

The manifests (every key, shape and dtype of the authors' FCANet(backbone='resnet' |
'res2net')) live in /work/shared/reference, outside the repo; the tests that need them skip
when it is absent (FCANET_REFERENCE_DIR overrides the place). No real checkpoint is needed:
round trips save our own random-initialised networks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from model.config import preset
from model.errors import CheckpointError
from model.network import official
from model.network.fcanet import FCANet
from model.network.official import detect_official_architecture, extract_state_dict, load_official_checkpoint

REFERENCE_DIR = Path(os.environ.get("FCANET_REFERENCE_DIR", "/work/shared/reference"))
MANIFESTS = {"resnet101": "fcanet_official_state_dict_resnet.json",
             "res2net101": "fcanet_official_state_dict_res2net.json"}
KEY_COUNTS = {"resnet101": 742, "res2net101": 1150}


def load_manifest_file(arch: str) -> dict:
    path = REFERENCE_DIR / MANIFESTS[arch]
    if not path.is_file():
        pytest.skip(f"authors' state_dict manifest not available: {path} is absent")
    return json.loads(path.read_text())


def load_manifest(arch: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """key -> (shape, dtype name) of the authors' state_dict."""
    return {e["key"]: (tuple(e["shape"]), e["dtype"]) for e in load_manifest_file(arch)["keys"]}


class NotATensor:
    """A custom class: a pickle holding one must be refused by weights_only loading."""

    def __init__(self) -> None:
        self.payload = "anything"


def _randomise_batchnorm(net: nn.Module, seed: int) -> None:
    # Non-default running statistics, so a loader that forgot buffers would change outputs.
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
            m.num_batches_tracked.fill_(7)


def _inputs(h: int = 64, w: int = 64) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, h, w, generator=g)
    pos, neg, first = (torch.rand(1, 1, h, w, generator=g) for _ in range(3))
    return image, pos, neg, first


@pytest.fixture(scope="module", params=sorted(MANIFESTS))
def paper_net(request) -> tuple[str, FCANet]:
    """One real 73M-parameter network per architecture, eval mode, BN stats randomised.
    Module scope with params: pytest runs one architecture's tests, then the other's, so only
    one network is alive at a time."""
    torch.manual_seed(0)
    net = FCANet(preset(request.param)).eval()
    with torch.no_grad():
        _randomise_batchnorm(net, seed=1)
    return request.param, net


@pytest.fixture(scope="module")
def outputs(paper_net) -> dict[str, torch.Tensor]:
    """One forward pass of the fixture network on 1x3x64x64, with the F4 it computed."""
    _, net = paper_net
    seen: dict[str, torch.Tensor] = {}
    handle = net.backbone_last.register_forward_hook(lambda m, i, o: seen.__setitem__("f4", o))
    with torch.no_grad():
        out = net(*_inputs(), with_aux=True)
    handle.remove()
    return {"logits": out.logits, "first_logits": out.first_logits, "f4": seen["f4"]}


# ------------------------------------------------------------------ manifests

def test_state_dict_equals_the_authors_manifest_key_for_key(paper_net):
    arch, net = paper_net
    manifest = load_manifest(arch)
    ours = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in net.state_dict().items()}
    assert len(manifest) == KEY_COUNTS[arch] and len(ours) == KEY_COUNTS[arch]
    assert sorted(set(manifest) - set(ours)) == []  # nothing of theirs is missing here
    assert sorted(set(ours) - set(manifest)) == []  # nothing extra here
    wrong = {k: (ours[k], manifest[k]) for k in manifest if ours[k] != manifest[k]}
    assert wrong == {}


def test_parameter_count_matches_the_manifest(paper_net):
    arch, net = paper_net
    data = load_manifest_file(arch)
    assert sum(p.numel() for p in net.parameters()) == data["num_params"]
    assert sum(b.numel() for b in net.buffers()) == data["num_buffer_elems"]


@pytest.mark.parametrize("arch", sorted(MANIFESTS))
def test_detection_recognises_each_manifest_key_set(arch):
    keys = load_manifest(arch)
    assert detect_official_architecture(dict.fromkeys(keys)) == arch


def test_paper_variants_use_the_released_channel_order_and_ours_do_not():
    with torch.device("meta"):
        nets = {name: FCANet(preset(name)) for name in ("resnet101", "res2net101", "efficientnet_lite0", "tiny")}
    assert nets["resnet101"].released_order and nets["resnet101"].my_decoder.high_first
    assert nets["res2net101"].released_order
    assert not nets["efficientnet_lite0"].released_order and not nets["efficientnet_lite0"].my_decoder.high_first


# ------------------------------------------------------------------ forward and round trip

def test_forward_gives_full_size_logits_and_f4_at_stride_16(paper_net, outputs):
    assert outputs["logits"].shape == (1, 1, 64, 64)
    assert outputs["first_logits"].shape == (1, 1, 64, 64)
    assert outputs["f4"].shape == (1, 2048, 4, 4)
    assert torch.isfinite(outputs["logits"]).all()


def test_saved_state_dict_loads_back_strictly_and_reproduces_outputs(paper_net, outputs, tmp_path):
    arch, net = paper_net
    path = tmp_path / f"fcanet-{arch}.pth"
    torch.save(net.state_dict(), path)  # the authors' format: a bare state_dict
    loaded = load_official_checkpoint(path)
    path.unlink()
    assert loaded.config == preset(arch) and not loaded.training
    assert all(p.device.type == "cpu" and p.requires_grad for p in loaded.parameters())
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with torch.no_grad():
        again = loaded(*_inputs(), with_aux=True)
    torch.testing.assert_close(again.logits, outputs["logits"], rtol=0, atol=0)
    torch.testing.assert_close(again.first_logits, outputs["first_logits"], rtol=0, atol=0)


def test_half_precision_copy_loads_as_float32(paper_net, tmp_path, monkeypatch):
    arch, net = paper_net
    half = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    placeholder = tmp_path / "half.pth"
    placeholder.write_bytes(b"read is patched")
    monkeypatch.setattr(official, "_read", lambda path: half)  # skip writing 150 MB
    loaded = load_official_checkpoint(placeholder)
    w = loaded.state_dict()["backbone_last.layer3.22.bn3.running_var"]
    assert w.dtype == torch.float32
    assert torch.equal(w, half["backbone_last.layer3.22.bn3.running_var"].float())
    assert loaded.state_dict()["backbone_pre.bn1.num_batches_tracked"].dtype == torch.int64


# ------------------------------------------------------------------ unwrapping and detection

def test_nested_and_dataparallel_state_dicts_are_unwrapped():
    sd = {"a.weight": torch.zeros(1), "b.bias": torch.ones(2)}
    prefixed = {f"module.{k}": v for k, v in sd.items()}
    for wrapped in (sd, {"state_dict": sd}, {"model": sd, "epoch": 3}, prefixed, {"state_dict": prefixed}):
        assert sorted(extract_state_dict(wrapped)) == ["a.weight", "b.bias"]


@pytest.mark.parametrize("loaded", [[1, 2], torch.zeros(3), {}, {"state_dict": {"w": 1.0}}],
                         ids=["list", "tensor", "empty", "non-tensor-values"])
def test_things_that_are_not_state_dicts_are_refused(loaded):
    with pytest.raises(CheckpointError, match="state_dict"):
        extract_state_dict(loaded)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "tiny"])
def test_detection_rejects_our_own_networks(name):
    with torch.device("meta"):
        keys = FCANet(preset(name)).state_dict()
    with pytest.raises(CheckpointError, match="not an FCA-Net checkpoint of the authors"):
        detect_official_architecture(keys)


def test_detection_message_points_efficientnet_users_to_our_checkpoints():
    with torch.device("meta"):
        keys = FCANet(preset("efficientnet_lite0")).state_dict()
    with pytest.raises(CheckpointError, match="safetensors"):
        detect_official_architecture(keys)


# ------------------------------------------------------------------ bad files

def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_official_checkpoint(tmp_path / "absent.pth")


def test_pickle_with_a_custom_class_is_refused_not_executed(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"backbone_pre.conv1.weight": torch.zeros(1), "extra": NotATensor()}, path)
    with pytest.raises(CheckpointError, match=r"refused to load .*NotATensor"):
        load_official_checkpoint(path)


@pytest.mark.parametrize("content", [b"\x00not a torch file at all" * 10, b"", b"PK\x03\x04truncated zip"],
                         ids=["garbage", "empty", "truncated-zip"])
def test_unreadable_files_are_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read .* as a PyTorch checkpoint"):
        load_official_checkpoint(path)


def _signature_only_state_dict(arch: str) -> dict[str, torch.Tensor]:
    # The detection keys alone, with tiny tensors: detected as `arch`, but far from complete.
    return {k: torch.zeros(1) for k in official._SIGNATURES[arch]}


@pytest.mark.parametrize("arch", sorted(MANIFESTS))
def test_mismatched_keys_are_named(arch, tmp_path):
    state = _signature_only_state_dict(arch)
    state["my_head.extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_official_checkpoint(path)
    message = str(info.value)
    assert arch in message and "missing keys" in message and "my_head.extra.weight" in message
    assert "wrong shape" in message and "(1,) (expected " in message
