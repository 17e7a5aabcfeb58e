import ast
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from gradio_app import handlers as h
from gradio_app.state import Session
from model import Click, Predictor


@pytest.fixture(scope="module")
def predictor():
    return Predictor.for_tests(seed=3)


@pytest.fixture()
def session():
    rng = np.random.default_rng(0)
    return h.upload(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))


class FakeStore:
    def __init__(self):
        self.added = []

    def add(self, **kw):
        self.added.append(kw)
        return f"rec{len(self.added)}"


def test_upload_normalises_any_image_and_rejects_garbage():
    s = h.upload(np.zeros((10, 12), np.uint16))
    assert s.image.shape == (10, 12, 3) and s.clicks == []
    with pytest.raises(h.AppError, match="cannot use this image"):
        h.upload(b"nope")
    assert h.upload(None).image is None


def test_clicks_predict_and_keep_order(predictor, session):
    s = h.add_click(predictor, session, 30, 20, h.POSITIVE, True)
    s = h.add_click(predictor, s, 5, 5, h.NEGATIVE, True)
    assert [c.positive for c in s.clicks] == [True, False]
    assert s.clicks[0] == Click(30.0, 20.0, True)
    assert s.mask.shape == (40, 60) and len(s.seconds) == 2
    assert "2 clicks (1 negative)" in h.status(s) and "ms" in h.status(s)


def test_click_errors(predictor, session):
    with pytest.raises(h.AppError, match="upload an image"):
        h.add_click(predictor, Session(), 1, 1, h.POSITIVE, True)
    with pytest.raises(h.AppError, match="first click must be positive"):
        h.add_click(predictor, session, 1, 1, h.NEGATIVE, True)
    with pytest.raises(h.AppError, match="outside"):
        h.add_click(predictor, session, 500, 1, h.POSITIVE, True)


def test_undo_reset_and_sis_toggle(predictor, session):
    s = h.add_click(predictor, session, 30, 20, h.POSITIVE, True)
    s2 = h.add_click(predictor, s, 5, 5, h.NEGATIVE, True)
    u = h.undo(predictor, s2, True)
    assert u.clicks == s.clicks and np.array_equal(u.mask, s.mask) and len(u.seconds) == 1
    assert h.undo(predictor, u, True).clicks == []
    r = h.reset(s2)
    assert r.clicks == [] and r.mask is None and r.image is s2.image
    off = h.toggle_sis(predictor, s, False)
    pred = predictor.predict(session.image, s.clicks, sis=False)
    assert np.array_equal(off.mask, pred.mask)


def test_view_draws_overlay_at_original_size_and_opacity_matters(predictor, session):
    s = h.add_click(predictor, session, 30, 20, h.POSITIVE, True)
    s.mask[:] = False
    s.mask[:10, :10] = True
    a, b = h.view(s, 0.0), h.view(s, 1.0)
    assert a.shape == (40, 60, 3)
    assert not np.array_equal(a[:5, :5], b[:5, :5])
    assert np.array_equal(a[35:, 50:], b[35:, 50:])
    assert h.view(Session(), 0.5) is None


def test_export_png_and_coco_rle(predictor, session, tmp_path):
    s = h.add_click(predictor, session, 30, 20, h.POSITIVE, False)
    s.mask[:] = False
    s.mask[3:9, 4:20] = True
    png, js = h.export_files(s, str(tmp_path))
    assert np.array_equal(np.asarray(Image.open(png)) > 0, s.mask)
    doc = json.loads(Path(js).read_text())
    seg = doc["annotations"][0]["segmentation"]
    back = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
    assert np.array_equal(back.astype(bool), s.mask)
    with pytest.raises(h.AppError):
        h.export_files(session, str(tmp_path))


def test_save_correction(predictor, session):
    store = FakeStore()
    s = h.add_click(predictor, session, 30, 20, h.POSITIVE, True)
    assert h.save_correction(store, s) == "rec1"
    rec = store.added[0]
    assert rec["source"] == "gradio" and rec["clicks"] == s.clicks and rec["mask"] is s.mask
    with pytest.raises(h.AppError, match="nothing to save"):
        h.save_correction(store, session)
    with pytest.raises(h.AppError, match="no corrections store"):
        h.save_correction(None, s)


def test_segment_endpoint_function(predictor):
    img = np.zeros((30, 40, 3), np.uint8)
    m = h.segment(predictor, img, [[20, 15, True], [2, 2, False]])
    assert m.shape == (30, 40) and set(np.unique(m)) <= {0, 255}


def test_gradio_app_uses_only_the_public_model_api():
    root = Path(__file__).resolve().parents[1] / "gradio_app"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                assert not n.startswith(("model.network", "model.training", "model.checkpoint")), (path, n)


def test_the_demo_command_builds_its_predictor_from_the_shared_flags(monkeypatch, tmp_path):
    import argparse

    from gradio_app import app as gradio_app_module
    from gradio_app import cli
    from model import predictor_flags

    built = {}

    def predictor_from_args(args):
        built["options"] = predictor_flags.predictor_options(args)
        return Predictor.for_tests()

    monkeypatch.setattr(cli, "predictor_from_args", predictor_from_args)

    class FakeDemo:
        def launch(self, **kwargs):
            built["launch"] = kwargs

    monkeypatch.setattr(gradio_app_module, "build_demo", lambda predictor, store: FakeDemo())
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["demo", "--no-edge-refine", "--graphcut-refine", "--port", "7999",
                              "--store", str(tmp_path / "store")])
    assert args.func(args) == 0
    assert built["options"]["edge_refine"] is False and built["options"]["graphcut_refine"].weight == 0.35
    assert built["launch"]["server_port"] == 7999


def test_a_click_shows_the_fast_mask_first_then_the_refined_one(predictor, session):
    first = h.add_click(predictor, session, 30, 20, h.POSITIVE, True)
    produced = h.add_click_progressive(predictor, first, 5, 5, h.NEGATIVE, True)
    fast = next(produced)
    # The fast stage is on the page before the refinement has run: nothing else was asked for yet.
    assert fast.refining and "refining" in h.status(fast)
    assert [c.positive for c in fast.clicks] == [True, False]
    final = next(produced)
    assert not final.refining and "refining" not in h.status(final)
    assert next(produced, None) is None
    expected = h.add_click(predictor, first, 5, 5, h.NEGATIVE, True)
    np.testing.assert_array_equal(final.mask, expected.mask)
    assert final.clicks == expected.clicks and len(final.seconds) == 2
    with pytest.raises(h.AppError, match="first click must be positive"):
        next(h.add_click_progressive(predictor, session, 1, 1, h.NEGATIVE, True))
    with pytest.raises(h.AppError, match="outside|image"):
        next(h.add_click_progressive(predictor, first, 500, 1, h.POSITIVE, True))


def test_the_example_photos_ship_with_the_install():
    """The app's examples are scikit-image's own photos (in its wheel, no download)."""
    from gradio_app.app import EXAMPLES, example_image

    assert len(EXAMPLES) >= 2
    for name in EXAMPLES:
        image = example_image(name)
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 256, name
