from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dataset_fixtures import write_tiny_davis
from model import Click, Predictor
from model.checkpoint import CheckpointMetadata
from model.config import preset
from model.zoom_in import ZoomInConfig, crop_clicks, crop_short_side, focus_box


def square_mask(height=200, width=300, box=(100, 50, 140, 90)):
    mask = np.zeros((height, width), bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def test_focus_box_widens_the_mask_box_around_its_centre():
    box = focus_box(square_mask(), [Click(120, 70)], ZoomInConfig(expansion=1.5, min_box=0.0))
    assert box == (90, 40, 150, 100)


def test_focus_box_holds_every_positive_click_but_not_the_negatives():
    clicks = [Click(120, 70), Click(10, 190), Click(290, 5, positive=False)]
    x0, y0, x1, y1 = focus_box(square_mask(), clicks, ZoomInConfig(expansion=1.0, min_box=0.0))
    assert (x0, y0) == (10, 50) and (x1, y1) == (140, 191)


def test_focus_box_is_shifted_inside_the_image_keeping_its_size():
    mask = square_mask(box=(280, 180, 300, 200))
    x0, y0, x1, y1 = focus_box(mask, [Click(290, 190)], ZoomInConfig(expansion=2.0, min_box=0.0))
    assert (x1, y1) == (300, 200) and (x1 - x0, y1 - y0) == (40, 40)


def test_focus_box_of_a_tiny_mask_keeps_some_context_and_of_an_empty_one_is_none():
    mask = square_mask(box=(150, 100, 152, 102))
    x0, y0, x1, y1 = focus_box(mask, [Click(150, 100)], ZoomInConfig(min_box=0.2))
    assert x1 - x0 == 40 and y1 - y0 == 40  # 0.2 of the 200-px short side
    assert focus_box(np.zeros((20, 30), bool), [Click(3, 3)]) is None


def test_crop_short_side_magnifies_within_its_limits():
    config = ZoomInConfig(min_gain=1.25, max_gain=3.0)
    # A quarter of a 400x400 image on each side: the short side would give 4x, capped at 3x.
    assert crop_short_side((0, 0, 100, 100), (400, 400), 64, config) == 48
    # The whole image gives no gain: no second pass.
    assert crop_short_side((0, 0, 400, 400), (400, 400), 64, config) is None
    # A wide crop is held to the first pass's pixel count.
    side = crop_short_side((0, 0, 400, 100), (400, 400), 64, config)
    assert side is not None and side * side * 4 <= 64 * 64 * 1.01


def test_crop_clicks_moves_them_into_the_crop_and_drops_the_rest():
    clicks = [Click(120, 70), Click(10, 10, positive=False)]
    assert crop_clicks(clicks, (100, 50, 140, 90)) == [Click(20, 70 - 50)]


class BrightIsObject(torch.nn.Module):
    """A stand-in network: object where the image is bright. Records each input's size."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, image, pos, neg, first):
        self.sizes.append(tuple(image.shape[-2:]))
        return SimpleNamespace(logits=(image[:, :1] > 0).float() * 20 - 10)


def bright_square_predictor(zoom_in):
    """zoom_in: False, or True for zooming in from the first click on. Without edge refinement,
    which would sharpen the coarse pass on its own and hide what zooming in adds."""
    zoom_in = ZoomInConfig(skip_clicks=0) if zoom_in is True else zoom_in
    metadata = CheckpointMetadata(network=preset("tiny"), version="bright", short_side=64)
    return Predictor(BrightIsObject(), metadata, zoom_in=zoom_in, optimise=False, edge_refine=False)


def test_zoom_in_sharpens_a_small_object_and_the_paper_default_makes_one_pass():
    image = np.zeros((400, 400, 3), np.uint8)
    truth = np.zeros((400, 400), bool)
    truth[183:217, 181:215] = True
    image[truth] = 255
    ious = {}
    for zoom in (False, True):
        predictor = bright_square_predictor(zoom)
        mask = predictor.predict(image, [Click(198, 200)]).mask
        ious[zoom] = (mask & truth).sum() / (mask | truth).sum()
        sizes = predictor.network.sizes
        assert len(sizes) == (2 if zoom else 1) and sizes[0] == (64, 64)
        if zoom:
            # An 80-px box (0.2 of the short side) magnified 3 times over the first pass's 64/400.
            assert sizes[1] == (38, 38)
    assert ious[True] > ious[False] + 0.1  # 0.70 -> 0.85 here


def test_zoom_in_is_skipped_when_the_object_fills_the_image():
    image = np.full((100, 100, 3), 255, np.uint8)
    predictor = bright_square_predictor(True)
    predictor.predict(image, [Click(50, 50)])
    assert len(predictor.network.sizes) == 1
    assert predictor.metadata["zoom_in"]["skip_clicks"] == 0


def test_zoom_in_by_default_starts_at_the_second_click():
    image = np.zeros((400, 400, 3), np.uint8)
    image[180:220, 180:220] = 255
    predictor = bright_square_predictor(ZoomInConfig())
    predictor.predict(image, [Click(200, 200)])
    assert len(predictor.network.sizes) == 1
    predictor.predict(image, [Click(200, 200), Click(10, 10, positive=False)])
    assert len(predictor.network.sizes) == 3


@pytest.mark.parametrize("zoom", [False, True])
def test_the_tiny_network_runs_with_and_without_zoom_in(zoom):
    predictor = Predictor.for_tests(seed=2)
    predictor.zoom_in = ZoomInConfig() if zoom else None
    img = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    pred = predictor.predict(img, [Click(60, 45), Click(5, 5, positive=False)])
    assert pred.mask.shape == (90, 120) and pred.probability.dtype == np.float32


def test_evaluate_cli_reports_and_journals_zoom_in(tmp_path):
    import json

    from model.checkpoint import save_checkpoint
    from model.cli import main

    from model.network.fcanet import FCANet

    checkpoint = tmp_path / "tiny.safetensors"
    network = FCANet(preset("tiny"))
    save_checkpoint(checkpoint, network, CheckpointMetadata(network=network.config, version="tiny", short_side=32))
    out = tmp_path / "out"
    assert main(["evaluate", "--dataset", "davis", "--data-dir", str(write_tiny_davis(tmp_path / "davis")),
                 "--checkpoint", str(checkpoint), "--zoom-in", "--max-clicks", "3", "--precision", "fp32",
                 "--out", str(out)]) == 0
    assert "| fcanet + zoom-in + edge refinement + band cut + SIS |" in (out / "report.md").read_text()
    identity = json.loads((out / "progress.jsonl").read_text().splitlines()[0])
    assert "zoom_in" in json.dumps(identity)
