import math

import pytest

from model.clicks import Click, pixel_of, validate_clicks
from model.errors import ClickError


def test_from_any_accepts_lists_dicts_and_clicks():
    assert Click.from_any([3, 4]) == Click(3.0, 4.0, True)
    assert Click.from_any([3, 4, False]) == Click(3.0, 4.0, False)
    assert Click.from_any({"x": 1, "y": 2, "is_positive": False}) == Click(1.0, 2.0, False)
    c = Click(5, 6)
    assert Click.from_any(c) is c


@pytest.mark.parametrize("bad", [[1], [1, 2, 3, 4], {"x": 1}, "ab", [None, 2]])
def test_from_any_rejects_malformed(bad):
    with pytest.raises(ClickError):
        Click.from_any(bad)


def test_empty_sequence_is_an_error():
    with pytest.raises(ClickError, match="no clicks"):
        validate_clicks([], 10, 10)


def test_negative_first_click_is_an_error():
    with pytest.raises(ClickError, match="first click must be positive"):
        validate_clicks([Click(1, 1, False), Click(2, 2)], 10, 10)


@pytest.mark.parametrize("x,y", [(-1, 5), (5, -1), (10.5, 5), (5, 11), (math.nan, 1), (math.inf, 1)])
def test_click_outside_image_is_an_error(x, y):
    with pytest.raises(ClickError):
        validate_clicks([Click(2, 2), Click(x, y, False)], 10, 10)


def test_edge_clicks_are_accepted_and_clamped():
    clicks = validate_clicks([Click(0, 0), Click(10, 10, False)], 10, 10)
    assert pixel_of(clicks[0], 10, 10) == (0, 0)
    assert pixel_of(clicks[1], 10, 10) == (9, 9)


def test_pixel_of_is_row_col():
    assert pixel_of(Click(7, 2), 10, 10) == (2, 7)
