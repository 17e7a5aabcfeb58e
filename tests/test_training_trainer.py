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


def test_the_last_step_of_the_schedule_is_validated(tmp_path):
    trainer = Trainer(_cfg(tmp_path, steps=5, val_every=2), _dataset(), validate=lambda net, meta: {"noc90": 1.0})
    trainer.fit(progress=False)
    steps = [l["step"] for l in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines()) if "validation" in l]
    assert steps == [2, 4, 5]


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
        "t.close()\n"
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


def test_weight_average_follows_the_formula():
    from model.training.ema import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    avg = WeightAverage(net, decay=0.9)
    start = {k: v.clone() for k, v in avg.network.state_dict().items()}
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(2.0)
        net[1].num_batches_tracked.fill_(5)
    avg.update(net)  # warm-up: the first decay is min(0.9, 1/10) = 0.1
    state = avg.network.state_dict()
    assert torch.allclose(state["0.weight"], 0.1 * start["0.weight"] + 0.9 * (start["0.weight"] + 1.0))
    assert torch.allclose(state["1.running_mean"], torch.tensor([0.9 * 2.0]))
    assert int(state["1.num_batches_tracked"]) == 5 and avg.updates == 1
    assert abs(avg.current_decay() - 2 / 11) < 1e-9
    assert not any(p.requires_grad for p in avg.network.parameters())


def test_moving_average_is_checkpointed_and_resumed(tmp_path):
    from model.checkpoint import load_checkpoint

    straight = Trainer(_cfg(tmp_path / "a", ema_decay=0.5), _dataset())
    straight.fit(max_steps=4, progress=False)
    saved, _ = load_checkpoint(tmp_path / "a" / "last.safetensors")
    raw, avg = straight.network.state_dict(), straight.ema.network.state_dict()
    name = next(k for k in raw if k.endswith("weight") and raw[k].dim() == 4)
    assert not torch.allclose(raw[name], avg[name])  # the average lags the raw weights
    assert torch.allclose(saved.state_dict()[name], avg[name])  # and is what the checkpoint holds
    first = Trainer(_cfg(tmp_path / "b", ema_decay=0.5), _dataset())
    first.fit(max_steps=2, progress=False)
    resumed = Trainer(_cfg(tmp_path / "b", ema_decay=0.5), _dataset())
    assert resumed.load_state() and resumed.ema.updates == 2
    resumed.fit(max_steps=2, progress=False)
    for k, v in avg.items():
        assert torch.allclose(v.float(), resumed.ema.network.state_dict()[k].float(), atol=1e-5), k


def _batchnorm_stats(network):
    return {name: b.clone() for name, b in network.named_buffers() if "running_" in name}


def test_freeze_batchnorm_keeps_running_statistics_while_weights_train(tmp_path):
    frozen = Trainer(_cfg(tmp_path / "frozen", freeze_batchnorm=True), _dataset())
    stats = _batchnorm_stats(frozen.network)
    weights = {k: v.clone() for k, v in frozen.network.named_parameters()}
    frozen.fit(max_steps=2, progress=False)
    assert stats and all(torch.equal(v, _batchnorm_stats(frozen.network)[k]) for k, v in stats.items())
    assert any(not torch.equal(v, dict(frozen.network.named_parameters())[k]) for k, v in weights.items())

    free = Trainer(_cfg(tmp_path / "free"), _dataset())
    free.fit(max_steps=2, progress=False)
    assert any(not torch.equal(v, _batchnorm_stats(free.network)[k]) for k, v in stats.items())


def test_sigterm_saves_the_state_at_the_current_step(tmp_path):
    import signal

    class TermAtThirdBatch(torch.utils.data.Dataset):
        def __init__(self):
            self.inner = _dataset()

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            if i == 2 * 2:  # the first item of step 3 (batch size 2)
                os.kill(os.getpid(), signal.SIGTERM)
            return self.inner[i]

    trainer = Trainer(_cfg(tmp_path), TermAtThirdBatch())
    trainer.fit(progress=False)
    assert trainer.step == 3  # the step that was running finished, no further one started
    resumed = Trainer(_cfg(tmp_path), _dataset())
    assert resumed.load_state() and resumed.step == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_grid_aligned_training_runs_on_odd_crops_and_marks_the_checkpoint(tmp_path):
    dataset = MixedObjectDataset([EllipseSource()], [1.0], length=6, seed=0, augment_cfg=AugmentConfig(crop_size=49))
    trainer = Trainer(_cfg(tmp_path, crop_size=49, grid_align=True), dataset)
    trainer.fit(max_steps=2, progress=False)
    assert read_metadata(tmp_path / "last.safetensors").grid_align is True
    assert Predictor.from_checkpoint(tmp_path / "last.safetensors").grid_align is True
    assert read_metadata(tmp_path / "last.safetensors").provenance["recipe"]["crop_size"] == 49


def test_bf16_precision_trains_in_bfloat16_and_keeps_float32_weights(tmp_path):
    trainer = Trainer(_cfg(tmp_path, precision="bf16"), _dataset())
    seen = []
    hook = trainer.network.register_forward_hook(lambda mod, inp, out: seen.append(out.logits.dtype))
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    trainer.fit(max_steps=2, progress=False)
    hook.remove()
    assert torch.bfloat16 in seen
    state = trainer.network.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in state.items())
    assert any(not torch.equal(v, before[k]) for k, v in state.items() if v.is_floating_point())
    record = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()][-1]
    assert np.isfinite(record["total"])
    assert read_metadata(tmp_path / "last.safetensors").provenance["recipe"]["precision"] == "bf16"


def test_unknown_precision_is_refused():
    import pytest

    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


def test_snapshots_keep_every_nth_step(tmp_path):
    Trainer(_cfg(tmp_path, snapshot_every=3), _dataset()).fit(max_steps=7, progress=False)
    assert sorted(p.name for p in tmp_path.glob("step*.safetensors")) == ["step3.safetensors", "step6.safetensors"]
    assert read_metadata(tmp_path / "step6.safetensors").provenance["steps"] == 6


def test_first_click_only_share_reaches_the_dataset(monkeypatch):
    import model.training.sources as sources
    from model.training.run import build_datasets

    monkeypatch.setattr(sources, "build_source", lambda spec: EllipseSource())
    cfg = _cfg("unused", first_click_only_probability=1.0, sources=[{"type": "ellipses"}])
    dataset, _ = build_datasets(cfg)
    assert all(int(dataset[i]["num_clicks"]) == 1 for i in range(4))
    paper, _ = build_datasets(_cfg("unused", sources=[{"type": "ellipses"}]))
    assert max(int(paper[i]["num_clicks"]) for i in range(4)) > 1


def test_holdout_seed_fixes_the_held_out_images_across_run_seeds(monkeypatch):
    import model.training.sources as sources
    from model.training.run import build_datasets

    monkeypatch.setattr(sources, "build_source", lambda spec: EllipseSource(count=40))

    def held_out(**kw):
        _, view = build_datasets(_cfg("unused", sources=[{"type": "ellipses"}], holdout_fraction=0.25, **kw))
        return sorted(view.indices)

    assert held_out(seed=1, holdout_seed=7) == held_out(seed=2, holdout_seed=7)
    assert held_out(seed=1) != held_out(seed=2)


def test_the_first_loss_weight_reaches_the_loss(tmp_path):
    assert Trainer(_cfg(tmp_path / "a"), _dataset()).loss_fn.first_weight == 1.0
    assert Trainer(_cfg(tmp_path / "b", first_loss_weight=2.5), _dataset()).loss_fn.first_weight == 2.5
