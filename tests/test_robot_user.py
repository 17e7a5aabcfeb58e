import numpy as np
import pytest

from model.clicks import Click
from model.robot_user import first_click, iou, next_click


def test_first_click_is_deepest_point():
    gt = np.zeros((9, 15), bool)
    gt[2:7, 3:12] = True
    c = first_click(gt)
    # rows 2-6, cols 3-11: depth 3 along row 4 for cols 5-9; ties go to the first in row-major order
    assert c.positive and (c.y, c.x) == (4, 5)
    with pytest.raises(ValueError):
        first_click(np.zeros((4, 4), bool))


def test_larger_false_negative_gives_positive_click():
    gt = np.zeros((20, 20), bool)
    gt[2:18, 2:18] = True
    pred = np.zeros_like(gt)
    pred[2:18, 2:8] = True  # misses a wide band on the right
    c = next_click(pred, gt)
    assert c.positive and c.x > 8


def test_tie_goes_negative():
    gt = np.zeros((10, 21), bool)
    gt[3:6, 2:5] = True  # 3x3 object
    pred = gt.copy()
    pred[3:6, 2:5] = False  # whole object missed: FN 3x3
    pred[3:6, 15:18] = True  # a 3x3 false positive of the same depth
    c = next_click(pred, gt)
    assert not c.positive and (c.y, c.x) == (4, 16)


def test_error_touching_the_border_counts_the_border_as_boundary():
    gt = np.zeros((10, 10), bool)
    pred = np.zeros_like(gt)
    pred[:, :3] = True  # false positive along the left border, 3 wide
    c = next_click(pred, gt)
    # padding makes the image edge a boundary: deepest point is the middle column 1, not column 0
    assert not c.positive and c.x == 1


def test_ignore_band_is_never_an_error_and_not_in_iou():
    gt = np.zeros((12, 12), bool)
    gt[3:9, 3:9] = True
    ignore = np.zeros_like(gt)
    ignore[2:10, 2:10] = True
    ignore[4:8, 4:8] = False
    pred = np.zeros_like(gt)
    pred[2:10, 2:10] = True  # only differs from gt inside the ignore band
    assert next_click(pred, gt, ignore) is None
    assert iou(pred, gt, ignore) == 1.0
    assert iou(pred, gt) < 1.0


def test_clicked_pixels_are_excluded():
    gt = np.zeros((5, 5), bool)
    gt[2, 2] = True
    c = next_click(np.zeros_like(gt), gt, clicked=[Click(2, 2)])
    assert c is None
