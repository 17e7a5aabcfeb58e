"""The demo behind basic auth in a real browser: without credentials the page is refused; with
them (answering the WWW-Authenticate challenge) the Gradio app loads, uploads and segments, so
its own background requests (queue, event stream, upload, files) carry the credentials too."""

import time

import pytest
from PIL import Image

from tests.live_servers import BackendServer
from tests.e2e.scenes import ellipse_scene

pytestmark = pytest.mark.e2e

USER, PASSWORD = "labeler", "browser-pass"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from backend.app import create_app
    from backend.config import BackendConfig
    from model import Predictor
    from model.corrections import open_store

    work = tmp_path_factory.mktemp("demo-auth")
    config = BackendConfig(data_dir=str(work / "data"), basic_auth_user=USER, basic_auth_pass=PASSWORD,
                           with_demo=True, watch_promoted_s=0, finetune_steps=0)
    server = BackendServer(create_app(config, predictor=Predictor.for_tests(seed=0),
                                      store=open_store(config.data_dir))).start()
    yield server
    server.stop()


def test_demo_works_in_a_browser_behind_basic_auth(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.url}/demo/")
    time.sleep(2)
    # headless Chromium cannot show the login prompt: it shows nothing of the app
    assert not browser.find_elements(By.ID, "canvas") and "Save correction" not in browser.page_source

    image, _ = ellipse_scene()
    Image.fromarray(image).save(tmp_path / "scene.png")
    # The browser answers the 401 challenge with the URL's credentials and keeps them for the
    # origin, as after typing them into its prompt; the app then runs from the plain URL (Gradio's
    # scripts cannot build their request URLs from a page URL that carries credentials).
    browser.get(f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/demo/")
    time.sleep(2)
    browser.get(f"{server.url}/demo/")
    wait = WebDriverWait(browser, 90)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#canvas input[type=file]"))
    upload.send_keys(str(tmp_path / "scene.png"))
    wait.until(lambda d: "Click on the object" in d.find_element(By.ID, "status").text)
    img = wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "#canvas img")
                                     if e.get_attribute("naturalWidth") not in (None, "0")), None))
    ActionChains(browser).move_to_element(img).click().perform()
    wait.until(lambda d: "1 clicks" in d.find_element(By.ID, "status").text)
    wait.until(lambda d: any((a.get_attribute("href") or "").endswith(".png")
                             for a in d.find_elements(By.CSS_SELECTOR, "#mask-png a")))
