import numpy as np
import pytest

from model.clicks import Click
from model.sis import apply_sis

# Two blobs touching only diagonally at (2,2)-(3,3), plus a far blob.
MASK = np.array(
    [
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
    ],
    dtype=bool,
)


def test_eight_connectivity_keeps_diagonal_neighbour():
    out = apply_sis(MASK, [Click(0, 0)], connectivity=8)
    assert out[:5].sum() == 13 and not out[5, 6]


def test_four_connectivity_splits_diagonal_neighbour():
    out = apply_sis(MASK, [Click(0, 0)], connectivity=4)
    assert out[:3, :3].all() and not out[3:, 3:].any()


def test_component_without_positive_click_is_dropped_and_negative_clicks_keep_nothing():
    out = apply_sis(MASK, [Click(6, 5, False), Click(4, 4)], connectivity=4)
    assert out[3:5, 3:5].all() and not out[5, 6] and not out[0, 0]


def test_no_click_on_foreground_gives_empty_mask():
    out = apply_sis(MASK, [Click(6, 0)], connectivity=8)
    assert not out.any()


def test_several_positive_clicks_keep_several_components():
    out = apply_sis(MASK, [Click(0, 0), Click(6, 5)], connectivity=4)
    assert out[0, 0] and out[5, 6] and not out[3, 3]


def test_bad_connectivity():
    with pytest.raises(ValueError):
        apply_sis(MASK, [Click(0, 0)], connectivity=6)
