"""The forward pass's precision: bf16 really runs in bfloat16, its masks match float32's within
the stated tolerance, and `auto` only picks bf16 where the CPU computes it natively."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from model import Click, Predictor
from model.inference_precision import native_bf16, resolve_precision
from model.predictor_flags import OUTPUT_MODES, add_predictor_arguments, predictor_options


def _scene(height=240, width=320):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 50, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:height, :width]
    gt = ((yy - 120) / 70.0) ** 2 + ((xx - 150) / 90.0) ** 2 <= 1
    image[gt] = (200, 120, 40)
    return image, gt


def _conv_output_dtypes(predictor: Predictor, image, clicks) -> set:
    seen = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
             for m in predictor.network.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        predictor.predict(image, clicks)
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_bf16_runs_the_convolutions_in_bfloat16_and_fp32_does_not():
    image, _ = _scene()
    clicks = [Click(150, 120)]
    fp32 = Predictor.for_tests()
    fp32.precision = "fp32"
    bf16 = Predictor.for_tests()
    bf16.precision = "bf16"
    assert _conv_output_dtypes(fp32, image, clicks) == {torch.float32}
    assert _conv_output_dtypes(bf16, image, clicks) == {torch.bfloat16}
    assert bf16.metadata["precision"] == "bf16"


def test_bundled_model_bf16_masks_match_fp32():
    """The tolerance docs/speed.md states: IoU >= 0.97 between the two masks, click after click."""
    image, gt = _scene()
    fp32 = Predictor.from_checkpoint(precision="fp32", short_side=256, **OUTPUT_MODES["network"])
    bf16 = Predictor.from_checkpoint(precision="bf16", short_side=256, **OUTPUT_MODES["network"])
    for clicks in ([Click(150, 120)], [Click(150, 120), Click(60, 120)], [Click(150, 120), Click(20, 20, False)]):
        a, b = fp32.predict(image, clicks).mask, bf16.predict(image, clicks).mask
        assert (a & b).sum() / max(1, (a | b).sum()) >= 0.97
    assert (fp32.predict(image, [Click(150, 120)]).mask & gt).sum() / gt.sum() > 0.8  # a real mask, not two empty ones


def test_auto_picks_bf16_only_where_the_cpu_has_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not native_bf16(cpu) and resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert native_bf16(cpu) and resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", cpu)
    tiny = Predictor.for_tests()
    with pytest.raises(ValueError, match="precision must be one of"):
        Predictor(tiny.network, tiny.metadata_obj, precision="int4")


def test_precision_flag():
    parser = argparse.ArgumentParser()
    add_predictor_arguments(parser)
    assert predictor_options(parser.parse_args([]))["precision"] == "auto"
    assert predictor_options(parser.parse_args(["--precision", "fp32"]))["precision"] == "fp32"
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp16"])
