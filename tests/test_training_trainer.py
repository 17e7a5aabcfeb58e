import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from model import Click, Predictor
from model.checkpoint import read_metadata
from model.training.augment import AugmentConfig
from model.training.config import TrainConfig
from model.training.dataset import MixedObjectDataset
from model.training.trainer import Trainer
from model.training.validation import robot_noc
from net_utils import free_port
from training_fixtures import EllipseSource

ROOT = Path(__file__).resolve().parents[1]


def _cfg(out, **kw):
    base = dict(out_dir=str(out), preset="tiny", pretrained_backbone=False, crop_size=48, batch_size=2, steps=8,
                lr=0.05, log_every=1, checkpoint_every=100, val_every=0, iterative_probability=0.5,
                iterative_max_extra_clicks=1, short_side=48, trained_on=["ellipses"])
    base.update(kw)
    return TrainConfig(**base)


def _dataset(seed=0):
    return MixedObjectDataset([EllipseSource()], [1.0], length=6, seed=seed, augment_cfg=AugmentConfig(crop_size=48))


def test_tiny_run_writes_log_state_and_checkpoint(tmp_path):
    samples = [(s.load_image(), s.load_mask()) for s in (EllipseSource()[i] for i in range(2))]
    trainer = Trainer(_cfg(tmp_path, val_every=2), _dataset(),
                      validate=lambda net, meta: robot_noc(Predictor(net, meta, short_side=48), samples, max_clicks=3))
    trainer.fit(max_steps=4, progress=False)
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any("validation" in l for l in lines) and any("total" in l for l in lines)
    assert (tmp_path / "state.pt").is_file()
    meta = read_metadata(tmp_path / "last.safetensors")
    assert meta.provenance["steps"] == 4 and meta.provenance["trained_on"] == ["ellipses"]


def test_resume_gives_the_same_state(tmp_path):
    straight = Trainer(_cfg(tmp_path / "a"), _dataset())
    straight.fit(max_steps=4, progress=False)
    first = Trainer(_cfg(tmp_path / "b"), _dataset())
    first.fit(max_steps=2, progress=False)
    resumed = Trainer(_cfg(tmp_path / "b"), _dataset())
    assert resumed.load_state() and resumed.step == 2
    resumed.fit(max_steps=2, progress=False)
    for k, v in straight.network.state_dict().items():
        assert torch.allclose(v.float(), resumed.network.state_dict()[k].float(), atol=1e-5), k


def test_trained_model_reacts_to_a_corrective_click(tmp_path):
    trainer = Trainer(_cfg(tmp_path, steps=6), _dataset())
    trainer.fit(max_steps=6, progress=False)
    predictor = Predictor(trainer.network, trainer.metadata(), short_side=48)
    sample = EllipseSource()[0]
    img = sample.load_image()
    a = predictor.predict(img, [Click(48, 36)]).probability
    b = predictor.predict(img, [Click(48, 36), Click(5, 5, False)]).probability
    assert np.abs(a - b).max() > 1e-4



def test_two_process_distributed_step(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(
        "import sys, torch\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
        "from test_training_trainer import _cfg, _dataset\n"
        "from model.training.trainer import Trainer\n"
        "import torch.distributed as dist\n"
        f"t = Trainer(_cfg({str(tmp_path / 'run')!r}, batch_size=4), _dataset())\n"
        "t.fit(max_steps=2, progress=False)\n"
        "flat = torch.cat([p.detach().flatten() for p in t.network.parameters()])\n"
        "gathered = [torch.zeros_like(flat) for _ in range(t.ctx.world)]\n"
        "dist.all_gather(gathered, flat)\n"
        "assert t.ctx.world == 2\n"
        "assert torch.allclose(gathered[0], gathered[1]), 'ranks diverged'\n"
        "print('rank', t.ctx.rank, 'ok', flush=True)\n"
        "t.ctx.close()\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={free_port()}", str(script)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count("ok") == 2
    assert (tmp_path / "run" / "last.safetensors").is_file()
