
import numpy as np
import pytest
from PIL import Image

from net_utils import free_port
from model import Predictor



@pytest.fixture(scope="module")
def app_url():
    from gradio_app.app import build_demo

    demo = build_demo(Predictor.for_tests(seed=0), None)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_segment_api_returns_mask_png_of_image_size(app_url, tmp_path):
    from gradio_client import Client, handle_file

    predictor = Predictor.for_tests(seed=0)
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    clicks = [[30, 20, True], [5, 40, False]]
    result = Client(app_url).predict(handle_file(str(tmp_path / "in.png")), clicks, api_name="/segment")
    mask = np.asarray(Image.open(result))
    assert mask.shape == (48, 64)
    expected = predictor.predict(img, clicks).mask_u8()
    assert np.array_equal(mask, expected)
