"""The backend's fine-tuning job leaves the cores to serving: few threads, lower priority, and the
deployment's forgetting settings (original data, anchor set) reach the job."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from backend.app import create_app
from backend.config import BackendConfig, ConfigError
from backend_fixtures import FakePredictor
from model import Click
from model.checkpoint import CheckpointMetadata, save_checkpoint
from model.config import preset
from model.corrections import open_store
from model.finetune.launcher import FinetuneLauncher
from model.network.fcanet import FCANet
from training_fixtures import EllipseSource


def test_the_job_runs_with_the_launchers_threads_and_niceness(tmp_path):
    store = open_store(tmp_path / "store")
    src = EllipseSource(count=4)
    for i in range(4):
        mask = src[i].load_mask()
        ys, xs = np.nonzero(mask)
        store.add(source="gradio", image=src[i].load_image(), mask=mask, clicks=[Click(float(xs.mean()), float(ys.mean()))])
    net = FCANet(preset("tiny"))
    base = tmp_path / "tiny.safetensors"
    save_checkpoint(base, net, CheckpointMetadata(network=net.config, version="tiny-0", short_side=48))
    launcher = FinetuneLauncher(str(tmp_path / "store"), steps=1, threads=1, nice=7,
                                extra_args=["--from", str(base), "--batch-size", "2", "--crop-size", "48",
                                            "--max-clicks", "1"])
    job = launcher.start({"project": "1"})
    assert launcher.wait(timeout=300) == 0
    out = tmp_path / "store" / "jobs" / job
    result = json.loads((out / "finetune.json").read_text())
    assert result["extra"]["torch_threads"] == 1
    assert result["extra"]["niceness"] == min(19, os.nice(0) + 7)


def test_backend_config_reaches_the_launcher(tmp_path):
    config = BackendConfig.from_env({"FCANET_FINETUNE_THREADS": "2", "FCANET_FINETUNE_NICE": "5",
                                     "FCANET_FINETUNE_ORIGINAL_CONFIG": "model/training/configs/default.yaml",
                                     "FCANET_FINETUNE_ANCHOR_SET": "coco_mval:/data/COCO_MVal"},
                                    data_dir=str(tmp_path / "data"), watch_promoted_s=0)
    app = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir))
    delegate = app.state.model.launcher.delegate
    assert (delegate.threads, delegate.nice) == (2, 5)
    args = delegate.extra_args
    assert args[args.index("--original-config") + 1] == "model/training/configs/default.yaml"
    assert args[args.index("--anchor-set") + 1] == "coco_mval:/data/COCO_MVal"


def test_backend_defaults_keep_the_job_small_and_nice(tmp_path):
    config = BackendConfig(data_dir=str(tmp_path / "data"), watch_promoted_s=0)
    delegate = create_app(config, predictor=FakePredictor(), store=open_store(config.data_dir)).state.model.launcher.delegate
    assert (delegate.threads, delegate.nice) == (1, 10) and "--original-config" not in delegate.extra_args


@pytest.mark.parametrize("env", [{"FCANET_FINETUNE_NICE": "25"}, {"FCANET_FINETUNE_THREADS": "-1"}])
def test_bad_finetune_limits_are_refused(tmp_path, env):
    with pytest.raises(ConfigError):
        BackendConfig.from_env(env, data_dir=str(tmp_path / "data"))
