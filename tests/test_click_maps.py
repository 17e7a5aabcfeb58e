import numpy as np

from model.click_maps import DISTANCE_CAP, click_map, click_maps, distance_to_points, gaussian_of_distance
from model.clicks import Click


def test_gaussian_has_half_maximum_at_half_fwhm():
    d = np.array([0.0, 5.0, 15.0])
    g10 = gaussian_of_distance(d, 10.0)
    assert g10[0] == 1.0
    assert abs(g10[1] - 0.5) < 1e-6  # FWHM 10: half maximum at distance 5
    g30 = gaussian_of_distance(d, 30.0)
    assert abs(g30[2] - 0.5) < 1e-6  # first-click map: three times wider


def test_hand_computed_values():
    m = click_map([Click(2, 1)], 5, 6, 10.0)
    # distance from (row 1, col 2) to (row 4, col 6) is 5 -> 0.5
    assert abs(m[4, 5] - np.exp(-4 * np.log(2) * (3**2 + 3**2) / 100)) < 1e-6
    assert m[1, 2] == 1.0
    assert abs(m[1, 2 + 3] - np.exp(-4 * np.log(2) * 9 / 100)) < 1e-6


def test_nearest_click_wins():
    m = click_map([Click(0, 0), Click(9, 0)], 1, 10, 10.0)
    assert m[0, 0] == 1.0 and m[0, 9] == 1.0
    assert abs(m[0, 8] - np.exp(-4 * np.log(2) / 100)) < 1e-6


def test_distance_cap_and_empty_map():
    d = distance_to_points([(0, 0)], 1, 400)
    assert d[0, 300] == DISTANCE_CAP
    empty = click_map([], 4, 4, 10.0)
    expected = np.exp(-4 * np.log(2) * 255.0**2 / 100)
    assert np.allclose(empty, expected)


def test_three_maps_pos_neg_first():
    clicks = [Click(1, 1), Click(8, 8, False), Click(8, 1)]
    maps = click_maps(clicks, 10, 10)
    assert maps.shape == (3, 10, 10) and maps.dtype == np.float32
    assert maps[0, 1, 1] == 1.0 and maps[0, 1, 8] == 1.0  # both positives
    assert maps[1, 8, 8] == 1.0 and maps[1, 1, 1] < 1.0  # negative only
    assert maps[2, 1, 1] == 1.0 and maps[2, 1, 8] < 1.0  # first click only
    # first-click map is wider: same distance, larger value
    assert maps[2, 1, 4] > maps[0, 1, 4]


def test_windowed_map_equals_the_distance_transform_definition():
    from model.clicks import pixel_of

    rng = np.random.default_rng(0)
    for fwhm in (10.0, 30.0):
        clicks = [Click(float(rng.integers(0, 120)), float(rng.integers(0, 90))) for _ in range(6)]
        points = [pixel_of(c, 120, 90) for c in clicks]
        exact = gaussian_of_distance(distance_to_points(points, 90, 120), fwhm)
        assert np.allclose(click_map(clicks, 90, 120, fwhm), exact, rtol=0, atol=1e-7)
