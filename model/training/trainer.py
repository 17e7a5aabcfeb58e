"""The training loop: click-simulated batches, iterative clicks, click loss, SGD with poly lr.

Resumable: `out_dir/state.pt` holds weights, optimiser, step and config (tensors and plain
types only, loaded with weights_only=True); the data order and every random draw are
functions of (seed, step), so a resumed run continues exactly where it stopped.
Runs the same under torchrun (torch.distributed: gloo on CPU, NCCL on GPUs): each rank takes
its share of every batch, gradients are averaged, rank 0 writes logs and checkpoints.
On CUDA the crops come from `num_workers` loader processes into pinned memory, and the click
maps and loss distances are computed on the GPU (`device_maps.py`); `time_budget_s` bounds a
run by the clock as well as by steps.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist

from ..checkpoint import CheckpointMetadata, file_digest, load_checkpoint, save_checkpoint
from ..config import NetworkConfig, preset
from ..network.boundary_head import grow_boundary_head
from ..network.fcanet import FCANet
from ..preprocess import normalise
from .batch import clicks_from_rows, distances_for, maps_for
from .config import PRECISIONS, TrainConfig
from .device_maps import maps_and_distances
from .ema import WeightAverage
from .params import parameter_groups
from .schedule import poly_lr_factor

STATE_FILE = "state.pt"
LOG_FILE = "log.jsonl"


def network_config(cfg: TrainConfig) -> NetworkConfig:
    return preset(cfg.preset).with_(**cfg.network_overrides)


def build_network(cfg: TrainConfig) -> tuple[FCANet, dict[str, Any]]:
    """(network in train mode, where its starting weights came from).

    A checkpoint start is named by version and file hash as well as path: configs point at the
    bundled file, and a later bundle replaces what that path holds.
    """
    if cfg.init_checkpoint:
        network, meta = load_checkpoint(cfg.init_checkpoint)
        origin = {"initialisation": cfg.init_checkpoint, "initialisation_version": meta.version,
                  "initialisation_sha256": file_digest(cfg.init_checkpoint)}
        # The changes a checkpoint start may ask of its network's shape are the ones that keep its
        # function: a new boundary head, a deeper backbone. Any other override would be silently
        # dropped by the checkpoint's own shape: refuse it.
        differing = {k: v for k, v in cfg.network_overrides.items()
                     if k not in ("boundary_channels", "backbone") and getattr(meta.network, k, object()) != v}
        if differing:
            raise ValueError(f"network_overrides {differing} cannot change the network of the start checkpoint "
                             f"{cfg.init_checkpoint} (only boundary_channels can grow a head and backbone "
                             "deepen Lite0 to Lite1): train from scratch or drop them")
        backbone = cfg.network_overrides.get("backbone")
        if backbone is not None and backbone != network.config.backbone:
            from ..network.deepen import deepen_backbone

            network, origin["deepened"] = deepen_backbone(network, backbone), {"backbone": backbone}
        channels = cfg.network_overrides.get("boundary_channels")
        if channels is not None:
            grown = grow_boundary_head(network, int(channels))
            if grown is not network:
                network, origin["grown"] = grown, {"boundary_channels": int(channels)}
        return network.train(), origin
    network = FCANet(network_config(cfg), pretrained_backbone=cfg.pretrained_backbone).train()
    return network, {"initialisation": "imagenet:" + network.config.backbone if cfg.pretrained_backbone else "random"}


class DistributedContext:
    """rank/world of this process; a no-op when not launched by torchrun."""

    def __init__(self, device: str = "auto") -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("the training config asks for device cuda, but torch sees no CUDA GPU")
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: list[int]) -> list[int]:
        return indices[self.rank :: self.world]

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            # Without the barrier a fast rank can tear down its gloo pairs while the other still
            # talks to it, and that rank aborts ("terminate called without an active exception").
            dist.barrier()
            dist.destroy_process_group()


class _StopRequest:
    """SIGTERM/SIGINT during `fit` finish the current step, save the state and return, so a
    killed campaign resumes where it stopped instead of at the last periodic checkpoint.
    Only in the main thread (signal handlers cannot be installed elsewhere)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class Trainer:
    """Owns the network, optimiser, data and the step counter of one run."""

    def __init__(self, cfg: TrainConfig, dataset, validate: Callable | None = None):
        self.cfg = cfg
        self._robot_pool = None
        # Forked before CUDA starts and before loader threads exist: a fork copies only this thread.
        self.robot_pool()
        self.ctx = DistributedContext(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.dataset = dataset
        self.validate = validate
        #: Also print each log record (the GPU machine returns only the command's output and files).
        self.echo_log = False
        self.out = Path(cfg.out_dir)
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)  # the head's initialisation is part of a repeatable run
        network, self.origin = build_network(cfg)
        self.network = network.to(self.ctx.device)
        if cfg.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            parameter_groups(self.network, cfg.lr, cfg.backbone_lr_ratio),
            lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
        )
        self.ema = WeightAverage(self.network, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.model = self.network
        if self.ctx.enabled:
            self.model = torch.nn.parallel.DistributedDataParallel(self.network)
        from .click_loss import ClickLoss

        self.loss_fn = ClickLoss(mode=cfg.loss, first_weight=cfg.first_loss_weight)
        self.step = 0
        self.best_noc = math.inf
        self._fit_started: float | None = None

    def calibrate_added_blocks(self, batches: int = 16) -> None:
        """Running BatchNorm statistics for the blocks a deepened start added
        (`model/network/deepen.py`), from `batches` training batches, before the first step; the
        moving average starts again from the calibrated network."""
        from ..network.deepen import calibrate_new_blocks

        rng = np.random.default_rng(self.cfg.seed)  # the same batches on every rank: the same statistics

        def inputs():
            for _ in range(batches):
                items = [self.dataset[int(i)] for i in rng.integers(len(self.dataset), size=self.cfg.batch_size)]
                batch = stack_items(items)
                click_lists = [clicks_from_rows(r, int(n)) for r, n in zip(batch["clicks"], batch["num_clicks"])]
                x, maps = self.forward_inputs(batch["image"], click_lists)
                yield x, maps[:, 0:1], maps[:, 1:2], maps[:, 2:3]

        calibrate_new_blocks(self.network, inputs())
        if self.ema is not None:
            self.ema = WeightAverage(self.network, self.cfg.ema_decay)

    def set_train_mode(self) -> None:
        """Training mode, except BatchNorm layers when cfg.freeze_batchnorm keeps their statistics."""
        self.model.train()
        if self.cfg.freeze_batchnorm:
            for module in self.network.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()

    @property
    def deployable(self) -> torch.nn.Module:
        """The weights that are validated and saved as checkpoints: the average when there is one."""
        return self.ema.network if self.ema is not None else self.network

    # ------------------------------------------------------------------ state
    def state_path(self) -> Path:
        return self.out / STATE_FILE

    def save_state(self) -> None:
        if not self.ctx.is_main:
            return
        state = {
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_noc": self.best_noc,
            "config": json.dumps(self.cfg.to_dict()),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        tmp = self.state_path().with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.state_path())
        save_checkpoint(self.out / "last.safetensors", self.deployable, self.metadata())

    def load_state(self) -> bool:
        path = self.state_path()
        if not path.is_file():
            return False
        state = torch.load(path, map_location=self.ctx.device, weights_only=True)
        self.network.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.best_noc = float(state.get("best_noc", math.inf))
        if self.ema is not None:
            if "ema" in state:
                self.ema.load_state_dict(state["ema"])
            else:  # a run that trained without an average starts one from its current weights
                self.ema = WeightAverage(self.network, self.cfg.ema_decay)
        return True

    def metadata(self, extra: dict | None = None) -> CheckpointMetadata:
        cfg = self.cfg
        provenance = {
            "trained": self.step > 0,
            **self.origin,
            "trained_on": list(cfg.trained_on),
            "steps": self.step,
            "crops_seen": self.step * cfg.batch_size,
            "recipe": cfg.to_dict(),
            "weights": f"moving average, decay {cfg.ema_decay}, over {self.ema.updates} steps" if self.ema else "raw",
        }
        provenance.update(extra or {})
        return CheckpointMetadata(
            network=self.network.config, version=f"{cfg.version_prefix}-step{self.step}",
            short_side=cfg.short_side, grid_align=cfg.grid_align, provenance=provenance,
        )

    # ------------------------------------------------------------------ data
    def batch_indices(self, step: int) -> list[int]:
        """Global sample indices of `step` (the dataset maps them to epochs itself)."""
        b = self.cfg.batch_size
        return list(range(step * b, (step + 1) * b))

    def load_batch(self, step: int) -> dict[str, torch.Tensor]:
        return stack_items([self.dataset[i] for i in self.ctx.shard(self.batch_indices(step))])

    def batches(self, end: int):
        """Batches of steps self.step .. end-1, in order: built here (num_workers 0) or by
        loader processes that read ahead (the same items: each is a function of (seed, index))."""
        if self.cfg.num_workers <= 0:
            for step in range(self.step, end):
                yield self.load_batch(step)
            return
        shards = [self.ctx.shard(self.batch_indices(step)) for step in range(self.step, end)]
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=shards, num_workers=self.cfg.num_workers, collate_fn=stack_items,
            pin_memory=self.ctx.device.type == "cuda", prefetch_factor=4, persistent_workers=False,
            worker_init_fn=_quiet_worker, multiprocessing_context=_WORKER_START)
        yield from loader

    def robot_pool(self):
        """Processes for the robot's corrective clicks (cfg.robot_workers; None: in this process).
        Each click is a pair of distance transforms of the crop, tens of milliseconds: at a GPU's
        batch sizes, done one by one they would leave the GPU waiting."""
        if self.cfg.robot_workers <= 0:
            return None
        if self._robot_pool is None:
            import multiprocessing

            self._robot_pool = multiprocessing.get_context(_WORKER_START).Pool(self.cfg.robot_workers)
        return self._robot_pool

    def close_pools(self) -> None:
        if self._robot_pool is not None:
            self._robot_pool.terminate()
            self._robot_pool = None

    def close(self) -> None:
        """End of training: the robot pool, the DistributedDataParallel wrapper (its reducer holds the
        process group, which would otherwise be torn down only at interpreter exit) and the group."""
        self.close_pools()
        self.model = self.network
        self.ctx.close()

    @property
    def on_cuda(self) -> bool:
        return self.ctx.device.type == "cuda"

    # ------------------------------------------------------------------ one step
    def autocast(self):
        """The forward pass's precision context (cfg.precision); a no-op for fp32."""
        dtype = PRECISIONS[self.cfg.precision]
        return torch.autocast(self.ctx.device.type, dtype=getattr(torch, dtype or "float32"),
                              enabled=dtype is not None)

    def click_tensors(self, click_lists, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(maps, distances or None) on the device: computed there on CUDA, by scipy on the CPU
        (where the distances are only needed for the loss, so forward passes skip them)."""
        if self.on_cuda:
            return maps_and_distances(click_lists, h, w, self.ctx.device)
        return maps_for(click_lists, h, w), None

    def forward_inputs(self, images: torch.Tensor, click_lists) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = images.shape[2:]
        maps = self.click_tensors(click_lists, h, w)[0]
        x = normalise(images.to(self.ctx.device, non_blocking=True), self.network.config.normalisation)
        if self.cfg.channels_last:
            x, maps = x.contiguous(memory_format=torch.channels_last), maps.contiguous(memory_format=torch.channels_last)
        return x, maps

    def add_iterative_clicks(self, image: torch.Tensor, gts: np.ndarray, click_lists, rng: np.random.Generator):
        """For part of the batch, let the robot user click on the model's own errors.

        With cfg.robot_sequences every sample takes 0 to iterative_max_extra_clicks rounds (0: the
        first click alone, which the benchmarks' mIoU@1 scores)."""
        from ..robot_user import next_click

        most = self.cfg.iterative_max_extra_clicks
        if self.cfg.robot_sequences:
            chosen = list(range(len(click_lists)))
            rounds = int(rng.integers(0, most + 1)) if most > 0 else 0
        else:
            chosen = [i for i in range(len(click_lists)) if rng.random() < self.cfg.iterative_probability]
            rounds = int(rng.integers(1, most + 1)) if chosen and most > 0 else 0
        if not chosen or rounds <= 0:
            return click_lists
        click_lists = [list(c) for c in click_lists]
        pool = self.robot_pool()
        # Eval mode: the robot reacts to what the model would show a user (running BN stats),
        # and a single chosen sample would break batch statistics anyway.
        self.network.eval()
        with torch.no_grad():
            for _ in range(rounds):
                sub = image[chosen]
                x, maps = self.forward_inputs(sub, [click_lists[i] for i in chosen])
                with self.autocast():
                    out = self.network(x, maps[:, 0:1], maps[:, 1:2], maps[:, 2:3])
                pred = (torch.sigmoid(out.logits[:, 0].float()) > self.cfg.iterative_threshold).cpu().numpy()
                pairs = [(pred[j], gts[i]) for j, i in enumerate(chosen)]
                clicks = pool.starmap(next_click, pairs) if pool is not None else [next_click(*p) for p in pairs]
                for i, click in zip(chosen, clicks):
                    if click is not None and len(click_lists[i]) < 24:
                        click_lists[i].append(click)
        self.set_train_mode()
        return click_lists

    def schedule_step(self) -> int:
        """The step the lr schedule stands at: the step itself, or with `anneal_by_time` the
        larger of it and the share of the time budget spent (times cfg.steps)."""
        if not self.cfg.anneal_by_time or self._fit_started is None:
            return self.step
        spent = (time.time() - self._fit_started) / self.cfg.time_budget_s
        return max(self.step, min(self.cfg.steps, int(spent * self.cfg.steps)))

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        rng = np.random.default_rng([self.cfg.seed, self.step, self.ctx.rank])
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step * 31 + self.ctx.rank)
        images, gt = batch["image"], batch["gt"].float()
        click_lists = [clicks_from_rows(r, int(n)) for r, n in zip(batch["clicks"], batch["num_clicks"])]
        gts = gt[:, 0].numpy() > 0.5
        click_lists = self.add_iterative_clicks(images, gts, click_lists, rng)
        h, w = images.shape[2:]
        maps, dists = self.click_tensors(click_lists, h, w)
        if dists is None:
            dists = distances_for(click_lists, h, w)
        x = normalise(images.to(self.ctx.device, non_blocking=True), self.network.config.normalisation)
        if self.cfg.channels_last:
            x, maps = x.contiguous(memory_format=torch.channels_last), maps.contiguous(memory_format=torch.channels_last)
        dists = dists.to(self.ctx.device, non_blocking=True)
        gt = gt.to(self.ctx.device, non_blocking=True)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * poly_lr_factor(
                self.schedule_step(), self.cfg.steps, self.cfg.poly_power, self.cfg.constant_tail_fraction)
        self.set_train_mode()
        with self.autocast():
            out = self.model(x, maps[:, 0:1], maps[:, 1:2], maps[:, 2:3], with_aux=True)
        # The loss in float32: a bfloat16 mean over a million weighted pixels keeps 8 bits of mantissa.
        losses = self.loss_fn(out.logits.float(), out.first_logits.float(), gt, dists[:, 0:1], dists[:, 1:2], dists[:, 2:3])
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.network)
        self.step += 1
        result = {k: float(v.detach()) for k, v in losses.items()}
        result["clicks"] = float(np.mean([len(c) for c in click_lists]))
        return result

    # ------------------------------------------------------------------ the run
    def log(self, record: dict) -> None:
        if self.ctx.is_main and self.echo_log:
            print(json.dumps(record), flush=True)
        if self.ctx.is_main:
            with open(self.out / LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    def run_validation(self) -> dict | None:
        if self.validate is None or not self.ctx.is_main:
            return None
        model = self.deployable.eval()
        try:
            result = self.validate(model, self.metadata())
        finally:
            self.set_train_mode()
        noc = result.get("noc90", math.inf)
        if noc <= self.best_noc:
            self.best_noc = noc
            save_checkpoint(self.out / "best.safetensors", self.deployable, self.metadata({"validation": result}))
        self.log({"step": self.step, "validation": result, "time": time.time()})
        return result

    def fit(self, max_steps: int | None = None, max_seconds: float | None = None, progress: bool = True) -> None:
        """Train until cfg.steps (or max_steps more steps / max_seconds / cfg.time_budget_s),
        saving as it goes. The clock stops the run before a step that would, at the pace of the
        steps so far, end past the budget."""
        end = self.cfg.steps if max_steps is None else min(self.cfg.steps, self.step + max_steps)
        budgets = [b for b in (max_seconds, self.cfg.time_budget_s) if b is not None]
        budget = min(budgets) if budgets else None
        start_time = self._fit_started = time.time()
        bar = _progress_bar(total=end, initial=self.step, enabled=progress and self.ctx.is_main)
        running: dict[str, float] = {}
        t0 = time.time()
        slowest = 0.0
        if self.step == 0 and "deepened" in self.origin:
            self.calibrate_added_blocks()
        stop = _StopRequest()
        batches = self.batches(end)
        try:
            while self.step < end and not stop.requested:
                step_start = time.time()
                batch = next(batches)
                stats = self.train_step(batch)
                # Steps run asynchronously on a GPU: the float() of the loss above waited for this one.
                slowest = max(slowest, time.time() - step_start) if self.step > 1 else slowest
                for k, v in stats.items():
                    running[k] = running.get(k, 0.0) + v
                bar.update(1)
                bar.set_postfix(loss=f"{stats['total']:.3f}")
                if self.step % self.cfg.log_every == 0:
                    n = self.cfg.log_every
                    self.log({"step": self.step, **{k: v / n for k, v in running.items()},
                              "lr": self.optimizer.param_groups[-1]["lr"],
                              "seconds_per_step": (time.time() - t0) / n, "time": time.time()})
                    running, t0 = {}, time.time()
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save_state()
                if self.cfg.snapshot_every and self.step % self.cfg.snapshot_every == 0 and self.ctx.is_main:
                    save_checkpoint(self.out / f"step{self.step}.safetensors", self.deployable, self.metadata())
                # The schedule's last step is validated too: the end of the annealing is usually the
                # best model, and best.safetensors must be able to pick it.
                if self.cfg.val_every and (self.step % self.cfg.val_every == 0 or self.step == self.cfg.steps):
                    self.run_validation()
                if budget is not None and time.time() - start_time + slowest > budget:
                    break
        finally:
            stop.restore()
            batches.close()
            self.close_pools()
        bar.close()
        self.save_state()
        if stop.requested and self.ctx.is_main:
            print(f"stopped by signal at step {self.step}; state saved, --resume continues", flush=True)


def stack_items(items: list[dict]) -> dict[str, torch.Tensor]:
    """Dataset items -> one batch dict of stacked tensors."""
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}


#: Loader and robot processes start from a fresh interpreter: a fork copies the locks of OpenCV's and
#: OpenMP's thread pools held by other threads (a server, an evaluation) and can hang the child.
_WORKER_START = "forkserver"


def _quiet_worker(_worker_id: int) -> None:
    """Loader processes decode and resize with one thread each: the processes are the parallelism."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar, or none where tqdm is not installed (the GPU machine's python) or not wanted."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)
