import numpy as np
import pytest

from model import Click, Predictor
from model.graphcut_refine import GraphCutRefineConfig, graphcut_refine, refine_region


def _scene(rng, height=80, width=100):
    """Noisy grey background with a noisy red rectangle (rows 20-59, columns 25-74) as the object."""
    image = np.clip(rng.normal(90, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    obj = np.zeros((height, width), bool)
    obj[20:60, 25:75] = True
    image[obj] = np.clip(rng.normal((200, 40, 40), 12, (obj.sum(), 3)), 0, 255).astype(np.uint8)
    return image, obj


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_an_under_segmented_blob_grows_to_the_coloured_object():
    image, obj = _scene(np.random.default_rng(0))
    prob = np.full(obj.shape, 0.1, np.float32)
    prob[30:50, 40:60] = 0.9  # the network's blob around the click: the middle of the object only
    clicks = [Click(50, 40)]
    before = _iou(prob >= 0.5, obj)
    refined = graphcut_refine(image, prob, clicks, GraphCutRefineConfig(margin=1.0, weight=0.5))
    assert before < 0.25 and _iou(refined >= 0.5, obj) > 0.95
    assert refined.shape == prob.shape and refined.dtype == np.float32


def test_outside_the_region_the_probability_is_untouched():
    image, obj = _scene(np.random.default_rng(1))
    prob = np.full(obj.shape, 0.1, np.float32)
    prob[30:50, 40:60] = 0.9
    x0, y0, x1, y1 = refine_region(prob >= 0.5, [Click(50, 40)], 0.25)
    assert (x0, y0, x1, y1) == (35, 25, 65, 55)  # 20 x 20 box widened by 5 on each side
    refined = graphcut_refine(image, prob, [Click(50, 40)], GraphCutRefineConfig(margin=0.25))
    outside = np.ones(obj.shape, bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(refined[outside], prob[outside])


def test_a_weight_below_one_half_leaves_confident_network_pixels_alone():
    image, obj = _scene(np.random.default_rng(2))
    prob = np.where(obj, 0.9, 0.05).astype(np.float32)
    prob[5:15, 5:15] = 0.99  # a confident false positive in the background's colour
    clicks = [Click(50, 40)]
    kept = graphcut_refine(image, prob, clicks, GraphCutRefineConfig(margin=0.2, weight=0.3))
    decided = graphcut_refine(image, prob, clicks, GraphCutRefineConfig(margin=0.2, weight=0.5))
    assert (kept[5:15, 5:15] >= 0.5).all()
    assert (decided[5:15, 5:15] < 0.5).mean() > 0.9


def test_click_disks_are_sure_labels():
    image, obj = _scene(np.random.default_rng(3))
    prob = np.where(obj, 0.9, 0.1).astype(np.float32)
    # A negative click inside the red object: its disk must come out background whatever the colours say.
    refined = graphcut_refine(image, prob, [Click(50, 40), Click(30, 25, False)],
                              GraphCutRefineConfig(disk_radius=3, weight=0.5))
    assert refined[25, 30] < 0.5 and refined[40, 50] >= 0.5


def test_nothing_to_refine_returns_the_input():
    image, _ = _scene(np.random.default_rng(4))
    empty = np.zeros(image.shape[:2], np.float32)
    assert graphcut_refine(image, empty, [Click(50, 40)]) is empty
    full = np.ones(image.shape[:2], np.float32)  # the region is the whole image: no background to model
    assert graphcut_refine(image, full, [Click(50, 40)]) is full


@pytest.mark.parametrize("kwargs, message", [({"iterations": 0}, "iteration"), ({"max_side": 8}, "max_side"),
                                             ({"margin": -0.1}, "margin"), ({"disk_radius": -1}, "disk_radius"),
                                             ({"weight": 0.0}, "weight"), ({"weight": 1.5}, "weight"),
                                             ({"cut_side": -1}, "cut_side")])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GraphCutRefineConfig(**kwargs)


def test_sizes_must_match():
    with pytest.raises(ValueError, match="differ in size"):
        graphcut_refine(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), np.float32), [Click(1, 1)])


def test_the_predictor_runs_it_when_asked_and_says_so():
    image, _ = _scene(np.random.default_rng(5))
    default = Predictor.for_tests()
    # GrabCut is an option now; the band cut (model/band_cut.py) is the default.
    assert default.graphcut_refine is None and default.band_cut is not None
    plain = Predictor(default.network, default.metadata_obj, graphcut_refine=False, optimise=False)
    assert plain.graphcut_refine is None and plain.metadata["graphcut_refine"] is False
    refined = Predictor(default.network, default.metadata_obj, graphcut_refine=GraphCutRefineConfig(weight=0.4),
                        optimise=False)
    assert refined.metadata["graphcut_refine"]["weight"] == 0.4 and refined.metadata["band_cut"] is False
    pred = refined.predict(image, [Click(50, 40)])
    assert pred.mask.shape == image.shape[:2] and pred.mask[40, 50]


def test_the_same_input_gives_the_same_answer_every_time():
    # GrabCut's k-means draws from OpenCV's random generator, which every call advances: on a real
    # photograph (the benchmark's) unseeded calls differ by dozens of pixels.
    import cv2

    from model.evaluation.benchmark import photo_like

    image, truth = photo_like()
    prob = cv2.GaussianBlur(truth.astype(np.float32), (21, 21), 8) * 0.8
    outputs = [graphcut_refine(image, prob, [Click(320, 216)]) for _ in range(3)]
    for output in outputs[1:]:
        np.testing.assert_array_equal(output, outputs[0])


def test_the_full_resolution_cut_follows_a_boundary_finer_than_the_shrunk_region():
    # A comb: 3-pixel teeth 3 pixels apart. Shrunk 4x (max_side 40 for a ~160-pixel region) the
    # teeth blur into one block; the second cut at the region's own size separates them again.
    rng = np.random.default_rng(5)
    height, width = 120, 200
    image = np.clip(rng.normal(90, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    obj = np.zeros((height, width), bool)
    obj[40:80, 40:100] = True
    for x in range(100, 160, 6):
        obj[50:70, x:x + 3] = True
    image[obj] = np.clip(rng.normal((200, 40, 40), 6, (obj.sum(), 3)), 0, 255).astype(np.uint8)
    prob = np.where(obj, 0.6, 0.1).astype(np.float32)
    prob[50:70, 100:160] = 0.55  # the network: one unsure block over the comb
    clicks = [Click(70, 60)]
    shrunk = GraphCutRefineConfig(max_side=40, weight=1.0, full_resolution=False)
    full = GraphCutRefineConfig(max_side=40, weight=1.0)  # the default: the last cut at full size
    comb = np.zeros_like(obj)
    comb[50:70, 100:160] = True
    coarse = graphcut_refine(image, prob, clicks, shrunk) >= 0.5
    fine = graphcut_refine(image, prob, clicks, full) >= 0.5
    assert _iou(fine & comb, obj & comb) > 0.9 > _iou(coarse & comb, obj & comb) + 0.15
    assert _iou(fine, obj) > _iou(coarse, obj)


def test_the_full_resolution_cut_finds_what_the_shrunk_cut_never_saw():
    image, obj = _scene(np.random.default_rng(6), height=160, width=200)
    image[64:67, 80:83] = (200, 40, 40)  # a 3-px island of the object's red, 5 px below it: lost at 32 px
    prob = np.where(obj, 0.7, 0.2).astype(np.float32)
    clicks = [Click(50, 40)]
    coarse = graphcut_refine(image, prob, clicks, GraphCutRefineConfig(max_side=32, weight=1.0, full_resolution=False))
    fine = graphcut_refine(image, prob, clicks, GraphCutRefineConfig(max_side=32, weight=1.0))
    assert not (coarse[64:67, 80:83] >= 0.5).any() and (fine[64:67, 80:83] >= 0.5).all()
    rest = np.ones(obj.shape, bool)
    rest[64:67, 80:83] = False
    assert ((fine >= 0.5) == obj)[rest].all()
