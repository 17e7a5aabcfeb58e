"""What does Label Studio put in the context on the 2nd and later smart clicks of one object?

Drives a real Label Studio 1.23.2 in headless Chromium: logs in, opens a task, selects the
smart keypoint label, clicks inside the object three times (the second with Alt, a negative
click), with "auto-accept suggestions" off (the default) and then on; our backend records
every /predict context it receives. Then accepts the brush, submits, and shows what the
webhook stored. Prints a JSON report; screenshots go to --out.

    python scripts/investigate_smart_clicks.py --out /tmp/smart-clicks
    (needs .lsvenv from scripts/install_label_studio.sh, chromium and chromium-driver)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "smart-clicks"))
    ap.add_argument("--ls-url", help="use a running Label Studio (with --token, --email, --password)")
    ap.add_argument("--token")
    ap.add_argument("--email")
    ap.add_argument("--password")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import httpx
    from PIL import Image

    from backend.app import create_app
    from backend.config import BackendConfig
    from backend.label_config import shipped_label_config
    from model import Predictor
    from model.corrections import open_store
    from tests.e2e.label_studio_server import BackendServer, LabelStudio
    from tests.e2e.scenes import ellipse_scene

    work = Path(tempfile.mkdtemp(prefix="smart-clicks-"))
    ls = None
    if args.ls_url:
        url, token, email, password = args.ls_url, args.token, args.email, args.password
    else:
        ls = LabelStudio(work).start()
        url, token, email, password = ls.url, ls.token, ls.email, ls.password
    api = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=120)

    # Our backend, recording every context it is sent.
    store = open_store(work / "store")
    config = BackendConfig(data_dir=str(work / "store"), label_studio_url=url, label_studio_api_key=token,
                           watch_promoted_s=0)
    app = create_app(config, predictor=Predictor.from_checkpoint(), store=store)
    contexts: list[dict] = []
    returned_ids: list[str] = []
    model = app.state.model
    real_predict = model.predict

    def recording_predict(tasks, context=None, **kw):
        if context:
            contexts.append({"time": time.time(), "context": context})
            print("context:", json.dumps(context)[:600], flush=True)
        answer = real_predict(tasks, context, **kw)
        returned_ids.extend(r["id"] for p in answer if isinstance(p, dict) for r in p["result"])
        return answer

    model.predict = recording_predict
    backend = BackendServer(app).start()

    image, _ = ellipse_scene(360, 480)
    Image.fromarray(image).save(work / "ellipse.png")
    project = api.post("/api/projects", json={"title": "smart clicks", "label_config": shipped_label_config()}).json()
    pid = project["id"]
    ml = api.post("/api/ml", json={"url": backend.url, "project": pid, "is_interactive": True,
                                   "title": "fcanet"}).json()
    for name in ("ellipse-a.png", "ellipse-b.png"):  # one task per mode
        with open(work / "ellipse.png", "rb") as fh:
            api.post(f"/api/projects/{pid}/import", files={"file": (name, fh, "image/png")}).raise_for_status()
    task_ids = sorted(t["id"] for t in api.get("/api/tasks", params={"project": pid}).json()["tasks"])

    report: dict = {"label_studio": url, "project": pid, "ml_backend": ml.get("id"), "runs": {}}
    driver = _browser()
    try:
        _login(driver, url, email, password)
        for mode, task_id in zip(("auto_accept_off", "auto_accept_on"), task_ids):
            contexts.clear()
            driver.get(f"{url}/projects/{pid}/data?task={task_id}")
            _wait_canvas(driver)
            _set_auto_accept(driver, mode == "auto_accept_on")
            driver.get(f"{url}/projects/{pid}/data?task={task_id}")
            canvas = _wait_canvas(driver)
            _select_smart_label(driver)
            driver.save_screenshot(str(out / f"{mode}-selected.png"))
            for i, (fx, fy, negative) in enumerate([(0.5, 0.5, False), (0.15, 0.15, True), (0.55, 0.45, False)]):
                before = len(contexts)
                if i:
                    # Label Studio unselects the label after each region ("keep label selected" is
                    # off by default): a labeler presses the label's hotkey again, so do we.
                    _select_smart_label(driver)
                _click(driver, canvas, fx, fy, alt=negative)
                _wait(lambda: len(contexts) > before, 60)
                time.sleep(1.5)
                driver.save_screenshot(str(out / f"{mode}-click{i + 1}.png"))
            report["runs"][mode] = [
                [{"id": r.get("id"), "x": round(r["value"]["x"], 2), "y": round(r["value"]["y"], 2),
                  "is_positive": r.get("is_positive"), "label": r["value"].get("keypointlabels")}
                 for r in (c["context"] or {}).get("result", []) if r.get("type") == "keypointlabels"]
                for c in contexts
            ]
            report["runs"][mode + "_brush_ids_returned"] = list(returned_ids)
            returned_ids.clear()
            report[mode + "_suggestion_bar"] = _accept_and_submit(driver, out, mode)
            time.sleep(3)
            anns = api.get(f"/api/tasks/{task_id}/annotations").json()
            report[mode + "_submitted_results"] = [
                {"id": r.get("id"), "type": r.get("type")} for a in anns for r in a.get("result", [])]
            report[mode + "_stored_records"] = [
                {"annotation_id": r.annotation_id, "clicks": [c.to_list() for c in r.clicks],
                 "image_stored": r.image_path is not None} for r in store.list(task_id=task_id)]
    finally:
        driver.save_screenshot(str(out / "last.png"))
        (out / "report.json").write_text(json.dumps(report, indent=1))
        driver.quit()
        backend.stop()
        if ls:
            ls.stop()
    print(json.dumps(report, indent=1))
    return 0


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1400,1000"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def _wait(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return True
        except Exception:  # noqa: BLE001 - page still loading
            pass
        time.sleep(0.3)
    raise TimeoutError("condition not met")


def _login(driver, url, email, password):
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/user/login/")
    _wait(lambda: driver.find_element(By.NAME, "email"), 60)
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
    _wait(lambda: "/user/login" not in driver.current_url, 60)


def _wait_canvas(driver):
    from selenium.webdriver.common.by import By

    def find():
        canvases = [c for c in driver.find_elements(By.CSS_SELECTOR, "canvas") if c.size["width"] > 200]
        return canvases[-1] if canvases else None

    _wait(lambda: find() is not None, 120)
    time.sleep(3)
    return find()


def _set_auto_accept(driver, on: bool):
    # The "Auto-Annotation" toggle (smart tools) on, "Auto accept annotation suggestions" as asked;
    # both are what a labeler sets with the toggles under the image, kept in localStorage.
    driver.execute_script("localStorage.setItem('autoAnnotation', 'true');"
                          f"localStorage.setItem('autoAcceptSuggestions', '{str(on).lower()}');")


def _select_smart_label(driver):
    """Select the KeyPointLabels' "Object" label (the last label group, hotkey 2) if it is not selected."""
    from selenium.webdriver.common.by import By

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    # An accepted brush stays selected, and a click on the image would only unselect it. A labeler
    # presses Esc; headless key events do not always reach the editor, so call what Esc does.
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    driver.execute_script("(window.dataManager.lsf.lsf.store || window.Htx).annotationStore.selected.unselectAll();")
    time.sleep(0.3)
    labels = [e for e in driver.find_elements(By.CSS_SELECTOR, ".lsf-label.lsf-label_clickable") if e.is_displayed()]
    if "selected" not in (labels[-1].get_attribute("class") or ""):
        labels[-1].click()
        time.sleep(0.5)
    # The "Auto-Detect" button of the image toolbar cycles through the smart tools (a smart brush,
    # then the smart keypoint): click until the keypoint tool is the selected one.
    for _ in range(4):
        if driver.execute_script(_SELECTED_TOOL_JS) == "KeyPointTool":
            return
        driver.find_element(By.CSS_SELECTOR, "button.lsf-tool_smart").click()
        time.sleep(0.5)
    raise RuntimeError("could not select the smart keypoint tool")


_SELECTED_TOOL_JS = """
const ann = (window.dataManager.lsf.lsf.store || window.Htx).annotationStore.selected;
const tool = ann.names.get('image').getToolsManager().findSelectedTool();
return tool ? tool.toolName : null;
"""


def _click(driver, canvas, fx, fy, alt=False):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    w, h = canvas.size["width"], canvas.size["height"]
    chain = ActionChains(driver)
    chain.move_to_element_with_offset(canvas, int((fx - 0.5) * w), int((fy - 0.5) * h))
    if alt:
        chain.key_down(Keys.ALT).click().key_up(Keys.ALT)
    else:
        chain.click()
    chain.perform()


def _accept_and_submit(driver, out, mode):
    """Click the green check of "N suggestions  x  v" under the image, then Submit."""
    from selenium.webdriver.common.by import By

    bar = [e for e in driver.find_elements(By.XPATH, "//*[normalize-space(text())='Auto-Annotation']/../..")
           if e.is_displayed()]
    html = bar[0].get_attribute("outerHTML")[:4000] if bar else ""
    accept = [b for b in driver.find_elements(By.CSS_SELECTOR, "[aria-label='Accept all suggestions'], "
                                              "[aria-label*='ccept'], [class*='accept']") if b.is_displayed()]
    if accept:
        accept[-1].click()
    time.sleep(1.5)
    driver.save_screenshot(str(out / f"{mode}-accepted.png"))
    submit = [b for b in driver.find_elements(By.XPATH, "//button[normalize-space(.)='Submit']") if b.is_displayed()]
    if submit:
        submit[0].click()
    return html


if __name__ == "__main__":
    sys.exit(main())
