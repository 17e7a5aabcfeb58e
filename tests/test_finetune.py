import json

import numpy as np
import pytest

from model import Click
from model.checkpoint import CheckpointMetadata, save_checkpoint
from model.config import preset
from model.corrections import open_store
from model.finetune.data import build_finetune_dataset, letterbox
from model.finetune.job import FinetuneConfig, run_finetune, split_records
from model.finetune.launcher import FinetuneLauncher
from model.network.fcanet import FCANet
from training_fixtures import EllipseSource


@pytest.fixture()
def store_with_corrections(tmp_path):
    store = open_store(tmp_path / "store")
    src = EllipseSource(count=4)
    for i in range(4):
        s = src[i]
        mask = s.load_mask()
        ys, xs = np.nonzero(mask)
        store.add(source="gradio", image=s.load_image(), mask=mask, annotation_id=None,
                  clicks=[Click(float(xs.mean()), float(ys.mean())), Click(2, 2, False)])
    return store, tmp_path


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    net = FCANet(preset("tiny"))
    path = tmp_path / "base.safetensors"
    save_checkpoint(path, net, CheckpointMetadata(network=net.config, version="base-0", short_side=48,
                                                  provenance={"trained_on": ["ellipses"]}))
    return str(path)


def test_letterbox_moves_clicks_with_the_image():
    img = np.zeros((20, 40, 3), np.uint8)
    mask = np.zeros((20, 40), bool)
    mask[5, 30] = True
    out_img, out_mask, (c,) = letterbox(img, mask, [Click(30, 5)], 80)
    assert out_img.shape == (80, 80, 3)
    r, col = np.argwhere(out_mask)[0]
    assert abs(c.x - col) <= 1 and abs(c.y - r) <= 1


def test_split_is_by_image(store_with_corrections):
    store, _ = store_with_corrections
    train, held = split_records(store.list(), 0.25, 0)
    assert len(held) == 1 and len(train) == 3
    assert not {r.image_sha256 for r in train} & {r.image_sha256 for r in held}


def test_dataset_uses_real_clicks(store_with_corrections):
    store, _ = store_with_corrections
    ds = build_finetune_dataset(store, store.list(), crop_size=48, seed=0, real_share=1.0, simulated_share=0.0)
    item = ds[0]
    assert item["image"].shape == (3, 48, 48) and int(item["num_clicks"]) == 2
    assert item["clicks"][1, 2] == 0  # the recorded negative click kept its sign


def test_finetune_registers_and_promotes_a_version(store_with_corrections, tiny_checkpoint):
    store, tmp = store_with_corrections
    cfg = FinetuneConfig(store=str(tmp / "store"), from_checkpoint=tiny_checkpoint, steps=2, batch_size=2,
                         crop_size=48, eval_max_clicks=3, out_dir=str(tmp / "ft"))
    result = run_finetune(cfg, progress=False)
    assert result.heldout_records == 1 and result.train_records == 3
    versions = [m["version"] for m in store.list_models()]
    assert result.version in versions
    promoted = store.promoted_model()
    assert result.promoted == (result.after["noc90"] <= result.before["noc90"])
    if result.promoted:
        assert promoted["version"] == result.version
    saved = json.loads((tmp / "ft" / "finetune.json").read_text())
    assert saved["version"] == result.version
    from model.checkpoint import read_metadata

    meta = read_metadata(result.checkpoint)
    assert meta.version == result.version and "corrections" in meta.provenance["trained_on"]
    assert meta.provenance["initialisation"] == tiny_checkpoint


def test_launcher_runs_a_background_job(store_with_corrections, tiny_checkpoint):
    store, tmp = store_with_corrections
    launcher = FinetuneLauncher(str(tmp / "store"), steps=1,
                                extra_args=["--from", tiny_checkpoint, "--batch-size", "2", "--crop-size", "48",
                                            "--max-clicks", "2"])
    assert launcher.status() == {"state": "idle"}
    job = launcher.start({"project": "1"})
    assert launcher.start({"project": "1"}) == job  # one job at a time
    assert launcher.wait(timeout=180) == 0
    status = launcher.status()
    assert status["state"] == "succeeded", (tmp / "store" / "jobs" / job / "job.log").read_text()[-2000:]
    assert "version" in status
