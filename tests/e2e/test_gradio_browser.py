"""A real browser: headless Chromium opens the app, uploads an image, clicks the object,
and the downloaded mask must cover it."""

import os
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e.scenes import check_covers_object, ellipse_scene
from tests.net_utils import free_port

pytestmark = pytest.mark.e2e




@pytest.fixture(scope="module")
def app_url():
    from gradio_app.app import KEYBOARD_JS, build_demo
    from model import Predictor

    demo = build_demo(Predictor.from_checkpoint(), None)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, js=KEYBOARD_JS)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_click_on_object_gives_a_mask_that_covers_it(app_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    artifacts = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "out" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    image, truth = ellipse_scene()
    path = tmp_path / "scene.png"
    Image.fromarray(image).save(path)

    browser.get(app_url)
    wait = WebDriverWait(browser, 60)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#canvas input[type=file]"))
    upload.send_keys(str(path))
    # Sync on the server: the upload handler has stored the image once the status asks for a click
    # (clicking the browser's local preview earlier would reach a session with no image yet).
    wait.until(lambda d: "Click on the object" in d.find_element(By.ID, "status").text)
    img = wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "#canvas img")
                                     if e.get_attribute("naturalWidth") not in (None, "0")), None))
    time.sleep(0.5)
    before = img.get_attribute("src")
    # Click the object's centre: element coordinates scaled to the image's natural pixels.
    rect = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", img)
    nat_w = int(img.get_attribute("naturalWidth"))
    scale = rect[0] / nat_w
    cx, cy = 240 * scale, 180 * scale
    ActionChains(browser).move_to_element_with_offset(img, cx - rect[0] / 2, cy - rect[1] / 2).click().perform()

    link = wait.until(lambda d: next((a for a in d.find_elements(By.CSS_SELECTOR, "#mask-png a")
                                      if (a.get_attribute("href") or "").endswith(".png")), None))
    browser.save_screenshot(str(artifacts / "gradio_after_click.png"))
    shown = browser.find_element(By.CSS_SELECTOR, "#canvas img").get_attribute("src")
    assert shown != before, "the displayed image did not change after the click (no overlay)"
    status = browser.find_element(By.ID, "status").text
    assert "1 clicks" in status, status
    data = urllib.request.urlopen(link.get_attribute("href"), timeout=30).read()
    (tmp_path / "mask.png").write_bytes(data)
    mask = np.asarray(Image.open(tmp_path / "mask.png")) > 127
    assert mask.shape == truth.shape
    # The download is the predictor's mask for a click at the object's centre (the browser's
    # click lands within a pixel of it) ...
    from model import Click, Predictor

    direct = Predictor.from_checkpoint().predict(image, [Click(240, 180)]).mask
    same = (mask & direct).sum() / max(1, (mask | direct).sum())
    assert same >= 0.98, f"the downloaded mask differs from the predictor's own mask (IoU {same:.3f})"
    # ... and the model finds the object.
    check_covers_object(mask, truth, "the downloaded mask")


def test_an_example_is_offered_and_segments_and_the_page_is_pictured(app_url, browser):
    """A fresh install offers example photos; picking one and clicking it gives a mask. The
    screenshot is the README's picture of the app (ARTIFACTS_DIR/app-screenshot.png; copy it to
    docs/app-screenshot.png when the app's look changes)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    artifacts = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "out" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    browser.get(app_url)
    wait = WebDriverWait(browser, 60)
    dropdown = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#example input"))
    dropdown.click()
    options = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#example li[role=option]") or None)
    names = [o.get_attribute("aria-label") for o in options]
    assert "astronaut" in names, f"the example list offers {names}"
    next(o for o in options if o.get_attribute("aria-label") == "astronaut").click()
    wait.until(lambda d: "Click on the object" in d.find_element(By.ID, "status").text)
    img = wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "#canvas img")
                                     if e.get_attribute("naturalWidth") not in (None, "0")), None))
    time.sleep(0.5)
    rect = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];", img)
    scale = rect[0] / int(img.get_attribute("naturalWidth"))
    # The astronaut's face in scikit-image's 512 x 512 photo.
    cx, cy = 230 * scale, 130 * scale
    ActionChains(browser).move_to_element_with_offset(img, cx - rect[0] / 2, cy - rect[1] / 2).click().perform()
    wait.until(lambda d: "1 clicks" in d.find_element(By.ID, "status").text
               and "refining" not in d.find_element(By.ID, "status").text)
    wait.until(lambda d: any((a.get_attribute("href") or "").endswith(".png")
                             for a in d.find_elements(By.CSS_SELECTOR, "#mask-png a")))
    browser.save_screenshot(str(artifacts / "app-screenshot.png"))
    area = float(browser.find_element(By.ID, "status").text.split("object ")[1].split("%")[0])
    assert 1.0 < area < 60.0, f"one click on the face gave an object of {area}% of the photo"
