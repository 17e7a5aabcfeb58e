import json

import numpy as np
import pytest

from model import Click
from model.checkpoint import CheckpointMetadata, save_checkpoint
from model.config import preset
from model.corrections import open_store
from model.finetune.data import build_finetune_dataset, crop_around_anchor
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


def test_crop_around_anchor_keeps_the_inference_scale_and_the_first_click():
    img = np.zeros((200, 400, 3), np.uint8)
    mask = np.zeros((200, 400), bool)
    mask[100:110, 300:310] = True
    clicks = [Click(304, 104), Click(10, 10, False), Click(390, 190, False)]
    for seed in range(20):
        out_img, out_mask, out_clicks = crop_around_anchor(img, mask, clicks, short_side=100, size=64,
                                                           rng=np.random.default_rng(seed))
        assert out_img.shape == (64, 64, 3) and out_mask.shape == (64, 64)
        # Short side 200 -> 100 halves the object: 10x10 -> 5x5, whole inside the window.
        assert out_mask.sum() == 25
        first = out_clicks[0]
        assert first.positive and out_mask[int(first.y), int(first.x)]
        # A 64-px window cannot hold both the anchor (x=152) and the click at x=5 in working pixels.
        assert all(0 <= c.x <= 63 and 0 <= c.y <= 63 for c in out_clicks)
        assert not any(c.x < 0 for c in out_clicks) and len(out_clicks) <= 2


def test_crop_around_anchor_pads_small_images():
    img = np.full((30, 30, 3), 255, np.uint8)
    mask = np.ones((30, 30), bool)
    out_img, out_mask, out_clicks = crop_around_anchor(img, mask, [Click(15, 15), Click(0, 0, False)], short_side=30,
                                                       size=48, rng=np.random.default_rng(0))
    assert out_mask.sum() == 900 and len(out_clicks) == 2
    assert (out_img[~out_mask] == 0).all()


def test_split_is_by_image(store_with_corrections):
    store, _ = store_with_corrections
    train, held = split_records(store.list(), 0.25, 0)
    assert len(held) == 1 and len(train) == 3
    assert not {r.image_sha256 for r in train} & {r.image_sha256 for r in held}


def test_dataset_uses_real_clicks(store_with_corrections):
    store, _ = store_with_corrections
    # Short side 72 -> 48 gives 48x64 frames: a 64-px window holds every click.
    ds = build_finetune_dataset(store, store.list(), crop_size=64, seed=0, real_share=1.0, simulated_share=0.0,
                                short_side=48, scale_range=(1.0, 1.0))
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and int(item["num_clicks"]) == 2
    assert item["clicks"][1, 2] == 0  # the recorded negative click kept its sign


def test_click_prefixes_train_every_state_of_a_recorded_sequence(store_with_corrections):
    store, _ = store_with_corrections
    kw = dict(crop_size=64, seed=0, real_share=1.0, simulated_share=0.0, short_side=48, scale_range=(1.0, 1.0))
    whole = build_finetune_dataset(store, store.list(), **kw)
    prefixes = build_finetune_dataset(store, store.list(), click_prefixes=True, **kw)
    assert {int(whole[g]["num_clicks"]) for g in range(40)} == {2}
    counts = [int(prefixes[g]["num_clicks"]) for g in range(40)]
    assert set(counts) == {1, 2}
    for g in range(40):
        item = prefixes[g]
        assert item["clicks"][0, 2] == 1  # the anchor is always kept
        assert (item["clicks"][int(item["num_clicks"]):] == -1).all()


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
    from model.checkpoint import file_digest, read_metadata

    meta = read_metadata(result.checkpoint)
    assert meta.version == result.version and "corrections" in meta.provenance["trained_on"]
    assert meta.provenance["initialisation"] == tiny_checkpoint
    # the start is named by what the file held, not only by a path a later bundle overwrites
    assert meta.provenance["initialisation_sha256"] == file_digest(tiny_checkpoint)
    assert meta.provenance["initialisation_version"] == read_metadata(tiny_checkpoint).version


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


def test_finetuning_a_grid_aligned_model_keeps_it_aligned(store_with_corrections, tmp_path):
    store, tmp = store_with_corrections
    net = FCANet(preset("tiny"))
    base = tmp_path / "aligned.safetensors"
    save_checkpoint(base, net, CheckpointMetadata(network=net.config, version="aligned-0", short_side=48,
                                                  grid_align=True, provenance={"trained_on": ["ellipses"]}))
    cfg = FinetuneConfig(store=str(tmp / "store"), from_checkpoint=str(base), steps=1, batch_size=2,
                         crop_size=48, eval_max_clicks=2, out_dir=str(tmp / "ft-aligned"))
    result = run_finetune(cfg, progress=False)
    from model.checkpoint import read_metadata

    meta = read_metadata(result.checkpoint)
    assert meta.grid_align is True and meta.provenance["recipe"]["crop_size"] == 49


def test_finetuning_can_grow_a_boundary_head(store_with_corrections, tiny_checkpoint):
    from model.checkpoint import load_checkpoint, read_metadata

    store, tmp = store_with_corrections
    cfg = FinetuneConfig(store=str(tmp / "store"), from_checkpoint=tiny_checkpoint, steps=3, batch_size=2,
                         crop_size=48, eval_max_clicks=2, out_dir=str(tmp / "ft-head"), boundary_channels=4)
    result = run_finetune(cfg, progress=False)
    assert read_metadata(tiny_checkpoint).network.boundary_channels == 0
    network, meta = load_checkpoint(result.checkpoint)
    assert meta.network.boundary_channels == 4
    # Three steps moved the head away from its zero start: it is trained, not only carried.
    assert network.boundary_head.out.weight.abs().sum() > 0


def test_an_interrupted_finetune_resumes_to_the_same_weights(store_with_corrections, tiny_checkpoint, monkeypatch):
    import torch

    from model.checkpoint import load_checkpoint, read_metadata
    from model.errors import TrainingStopped
    from model.training.trainer import Trainer

    store, tmp = store_with_corrections

    def job(out: str, resume: bool) -> FinetuneConfig:
        return FinetuneConfig(store=str(tmp / "store"), from_checkpoint=tiny_checkpoint, steps=4, batch_size=2,
                              crop_size=48, eval_max_clicks=2, out_dir=str(tmp / out), resume=resume)

    straight = run_finetune(job("straight", resume=True), progress=False)  # nothing to resume: starts fresh
    full_fit = Trainer.fit
    with monkeypatch.context() as m:  # the process dies after two of the four steps
        m.setattr(Trainer, "fit", lambda self, progress=True: full_fit(self, max_steps=2, progress=progress))
        with pytest.raises(TrainingStopped, match="stopped at step 2 of 4"):
            run_finetune(job("again", resume=True), progress=False)
    # a half-trained model is not the job's result: nothing gated, registered or promoted
    assert not (tmp / "again" / "finetune.json").exists()
    assert read_metadata(tmp / "again" / "last.safetensors").version.endswith("step2")
    assert straight.version in [m["version"] for m in store.list_models()] and len(store.list_models()) == 1
    steps_run = []
    full_step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self, batch: steps_run.append(self.step) or full_step(self, batch))
    resumed = run_finetune(job("again", resume=True), progress=False)
    assert steps_run == [2, 3]  # only the two steps the interrupted run had not made
    assert read_metadata(resumed.checkpoint).version.endswith("step4")
    a, _ = load_checkpoint(straight.checkpoint)
    b, _ = load_checkpoint(resumed.checkpoint)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x.float(), y.float(), atol=1e-5), name
    steps_run.clear()  # without resume the same folder starts over: a fresh job, as the learning loop wants
    run_finetune(job("again", resume=False), progress=False)
    assert steps_run == [0, 1, 2, 3]
