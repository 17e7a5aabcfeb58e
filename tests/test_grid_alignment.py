"""Padding the working image to 16k + 1 pixels (`grid_padding`, `Predictor(grid_align=True)`)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model import Click, Predictor
from model.preprocess import OUTPUT_STRIDE, grid_padding


@pytest.mark.parametrize("height, width", [(1, 1), (16, 16), (17, 33), (512, 683), (384, 384), (513, 700)])
def test_padded_sides_are_stride_k_plus_one(height, width):
    pad_bottom, pad_right = grid_padding(height, width)
    assert 0 <= pad_bottom < OUTPUT_STRIDE and 0 <= pad_right < OUTPUT_STRIDE
    assert (height + pad_bottom - 1) % OUTPUT_STRIDE == 0
    assert (width + pad_right - 1) % OUTPUT_STRIDE == 0


def _peak_after_stride16_and_upsampling(width: int, x0: int) -> int:
    """Where a one-pixel-wide line at column x0 peaks after four stride-2 3x3 convs (padding 1,
    as in the backbones) and the head's align_corners=True upsampling back to width."""
    x = torch.zeros(1, 1, 1, width)
    x[..., x0] = 1.0
    kernel = torch.tensor([1.0, 2.0, 1.0]).view(1, 1, 1, 3)
    for _ in range(4):
        x = F.conv2d(x, kernel, stride=(1, 2), padding=(0, 1))
    up = F.interpolate(x, size=(1, width), mode="bilinear", align_corners=True)
    return int(up[0, 0, 0].argmax())


def test_alignment_puts_coarse_features_back_where_they_came_from():
    # The reason grid_padding exists: at 16k the coarse cells drift toward the right edge by up to
    # a cell; at 16k + 1 they land on the pixels they were computed from.
    x0 = 480
    assert abs(_peak_after_stride16_and_upsampling(512, x0) - x0) >= 12
    _, pad = grid_padding(1, 512)
    assert abs(_peak_after_stride16_and_upsampling(512 + pad, x0) - x0) <= 1


def _tiny(grid_align: bool, short_side: int) -> Predictor:
    base = Predictor.for_tests(seed=3)
    return Predictor(base.network, base.metadata_obj, short_side=short_side, grid_align=grid_align, optimise=False)


def test_grid_aligned_prediction_has_the_image_size_and_changes_the_input():
    img = np.random.default_rng(0).integers(0, 255, (48, 72, 3), dtype=np.uint8)
    clicks = [Click(30, 20)]
    aligned = _tiny(True, 48).predict(img, clicks, sis=False)
    plain = _tiny(False, 48).predict(img, clicks, sis=False)
    assert aligned.probability.shape == plain.probability.shape == (48, 72)
    assert not np.allclose(aligned.probability, plain.probability)
    assert _tiny(True, 48).metadata["grid_align"] is True


def test_grid_alignment_is_a_no_op_on_sizes_that_are_already_aligned():
    img = np.random.default_rng(1).integers(0, 255, (49, 81, 3), dtype=np.uint8)
    clicks = [Click(40, 24), Click(10, 10, False)]
    aligned = _tiny(True, 49).predict(img, clicks, sis=False)
    plain = _tiny(False, 49).predict(img, clicks, sis=False)
    np.testing.assert_allclose(aligned.probability, plain.probability, atol=1e-6)


def test_checkpoint_records_grid_alignment_and_the_predictor_follows_it(tmp_path):
    from dataclasses import replace

    from model.checkpoint import CheckpointMetadata, save_checkpoint

    from model.config import preset
    from model.network.fcanet import FCANet

    base = Predictor.for_tests(seed=4)
    aligned_meta = replace(base.metadata_obj, grid_align=True)
    save_checkpoint(tmp_path / "aligned.safetensors", FCANet(preset("tiny")), aligned_meta)
    loaded = Predictor.from_checkpoint(tmp_path / "aligned.safetensors", short_side=48)
    assert loaded.grid_align is True and loaded.metadata["grid_align"] is True
    assert Predictor.from_checkpoint(tmp_path / "aligned.safetensors", grid_align=False).grid_align is False
    # Checkpoints written before the field existed load as unaligned.
    legacy = base.metadata_obj.to_json().replace(', "grid_align": false', "")
    assert "grid_align" not in legacy
    assert CheckpointMetadata.from_json(legacy).grid_align is False


def test_training_config_demands_an_aligned_crop_size():
    from model.preprocess import aligned_size
    from model.training.config import TrainConfig

    assert aligned_size(384) == 385 and aligned_size(385) == 385 and aligned_size(320) == 321
    assert TrainConfig(crop_size=385, grid_align=True).grid_align
    with pytest.raises(ValueError, match="crop_size of 16k \\+ 1 pixels \\(e.g. 385\\), got 384"):
        TrainConfig(crop_size=384, grid_align=True)
