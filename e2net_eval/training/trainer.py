"""The run of one training job: `Trainer`, whose steps are methods.

`train(...)` builds a `TrainJob` (job.py) and runs a `Trainer`: `prepare` (split, skip or
resume: resume.py), `build` (caches, network, optimiser, restored state), then per epoch
`run_epoch`, `validate` and `end_epoch` (schedule, best weights, log line, checkpoint), and
`finish` (``done.json``). SGD and the plateau schedule of the paper (schedule.py); mixed
precision and channels-last on CUDA, DistributedDataParallel under ``torchrun``,
deterministic for a seed on the CPU (docs/training.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

import reference_models
from e2net_eval import rundir
from e2net_eval.data.split import resolve_split
from e2net_eval.errors import InputError
from e2net_eval.runtime.device import (
    amp_setup,
    configure_cpu_threads,
    prepare_model,
    resolve_device,
    to_device,
)
from e2net_eval.runtime.geometry import scaled_pixels
from e2net_eval.runtime.weights import backbone_record, load_backbone, weights_digest
from e2net_eval.training import checkpoint as ckpt
from e2net_eval.training import resume
from e2net_eval.training.cache import SliceCache
from e2net_eval.training.datasets import (
    TRAIN_ITEM,
    TRAIN_PLAN,
    VAL_ITEM,
    VAL_PLAN,
    PlanBatches,
    SliceDataset,
    SliceSpec,
    collate,
    plan_epoch,
    steps_per_epoch,
)
from e2net_eval.training.distributed import DistInfo, all_sum, barrier, dist_info, init_group
from e2net_eval.training.job import TrainJob
from e2net_eval.training.schedule import DECREASE, STOP, Plateau
from e2net_eval.training.turns import cache_folder, cache_turn, split_turn
from e2net_eval.util.faults import fault_point
from e2net_eval.util.jsonio import dump_json, sanitize
from e2net_eval.util.lock import open_regular
from e2net_eval.util.meta import run_meta
from e2net_eval.util.outdir import work_folder
from e2net_eval.util.reading import decoding
from e2net_eval.util.seed import seed_everything
from reference_models.losses import objective

log = logging.getLogger(__name__)


@dataclass
class EpochStats:
    """What one pass of `Trainer.run_epoch` did."""

    steps: int
    loss_sum: float
    seconds: float
    complete: bool


def forward_loss(net, cfg, batch, autocast) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The network's outputs on `batch` (forward under autocast, then float32) and the loss."""
    with autocast():
        outputs = net(batch["image"])
    outputs = {k: v.float() for k, v in outputs.items()}
    loss, _ = objective(cfg, outputs, batch["mask"], batch.get("edge"))
    return outputs, loss


class Trainer:
    """One configuration's training; see the module docstring for the order of the steps."""

    def __init__(self, job: TrainJob, info: DistInfo, device: torch.device):
        self.job, self.info, self.device = job, info, device
        self.settings = job.settings(cuda=device.type == "cuda")
        self.state: dict[str, Any] | None = None
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.best = {"signal": float("inf"), "val_loss": None, "epoch": None, "step": None}
        if job.run_dir is not None:
            self.out = rundir.config_dir(job.run_dir, job.config)

    # -- prepare: split, skip or resume ---------------------------------------------------
    def prepare(self) -> dict[str, Any] | None:
        """Check the split, decide skip/resume; the ``done.json`` record when skipping."""
        job, info = self.job, self.info
        run_dir = Path(job.run_dir)
        self.cache = SliceCache(cache_folder(run_dir, job.cache_dir), job.data_root)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        # the run's one split is checked first: a different one is an error even when done
        with split_turn(run_dir, info):
            self.train_ids, self.val_ids = resolve_split(
                run_dir, self.cache.case_ids(), job.split, seed=job.split_seed, write=info.is_main
            )
        done, self.state = resume.decide(job, self.out, info)
        if done is not None:
            return done
        if self.settings.batch_size % info.world:
            raise InputError(
                f"batch size {self.settings.batch_size} is not divisible by {info.world} processes"
            )
        if self.state is not None:
            resume.check_resumable(
                self.state, job.seed, self.settings, self.out / rundir.LAST_CHECKPOINT
            )
        return None

    # -- build: data, network, optimiser, restored state ---------------------------------
    def build(self) -> None:
        """Everything the epochs need, in the order that keeps a seed's run bit-identical."""
        job, info = self.job, self.info
        seed_everything(job.seed, deterministic=self.device.type == "cpu")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if info.is_main:
            with cache_turn(self.cache.dir):
                self.cache.build(self.train_ids + self.val_ids, progress=job.progress)
        barrier(info)
        self.train_cases = self.cache.open(self.train_ids, progress=False)
        self.val_cases = self.cache.open(self.val_ids, progress=False)
        self.build_network()
        self.spec = self.slice_spec()
        self.build_optimiser()
        if self.state is not None:
            self.restore(self.state)
        if info.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.dataset = SliceDataset(self.train_cases, self.spec)
        # validation sees the natural mix of slices (no oversampling): it estimates quality
        val_spec = dataclasses.replace(self.spec, tumour_fraction=0.0)
        self.val_set = SliceDataset(self.val_cases, val_spec)
        val_plan = plan_epoch(self.val_cases, val_spec, [job.seed, VAL_PLAN, 0])
        self.val_plan = val_plan[: self.settings.max_val_samples]
        self.write_settings()

    def build_network(self) -> torch.nn.Module:
        """The configuration's network, seeded, on the device (also used by `bench train`)."""
        job = self.job
        torch.manual_seed(job.seed)
        overrides = {} if job.context is None else {"context": job.context}
        model = reference_models.create_model(job.config, profile=job.profile, **overrides)
        saved = None if self.state is None else self.state.get("model_config")
        if saved not in (None, model.config.to_dict()):
            raise InputError(
                f"resume with a different network than the run's ({job.config})",
                path=self.out / rundir.LAST_CHECKPOINT,
            )
        if job.backbone_weights is not None and self.state is None:
            n = load_backbone(model, job.backbone_weights)
            log.info("loaded backbone weights into %d encoder(s) from %s", n, job.backbone_weights)
        self.model = self.net = prepare_model(model, self.device)
        self.cfg = model.config
        return model

    def slice_spec(self) -> SliceSpec:
        """What the network's samples look like (crop/resize size, context, edge target)."""
        cfg, s = self.cfg, self.settings
        return SliceSpec(
            stage=cfg.stage,
            input_size=cfg.input_size,
            in_channels=self.model.in_channels,
            edge_target=cfg.edge_target if cfg.stage == 2 else "none",
            margin=tuple(scaled_pixels(p, cfg.input_size) for p in s.margin_px),
            neg_ratio=s.neg_ratio,
            tumour_fraction=s.tumour_fraction,
        )

    def build_optimiser(self) -> None:
        """SGD, the plateau schedule and the mixed-precision policy of the device."""
        s = self.settings
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
        )
        self.plateau = Plateau(
            patience=s.patience,
            threshold=s.plateau_threshold,
            factor=s.lr_factor,
            max_decreases=s.lr_decreases,
        )
        self.autocast, self.scaler = amp_setup(self.device)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: weights, optimiser, schedule, counters, random states.

        An entry that does not fit (another shape, type or layout) is a `ReadError` naming
        the checkpoint, not a traceback."""
        with decoding(self.out / rundir.LAST_CHECKPOINT, what="checkpoint"):
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.plateau.load_state_dict(state["plateau"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
            self.global_step, self.best = int(state["step"]), dict(state["best"])
            ckpt.set_rng_states(state["rng"])
        log.info("resuming %s at epoch %d, step %d", self.job.config, self.epoch, self.global_step)

    def write_settings(self) -> None:
        """``RUN/<config>/settings.json``: what this run trains with."""
        if not self.info.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        job = self.job
        dump_json(
            self.out / rundir.SETTINGS_JSON,
            {
                "config": job.config,
                "model_config": dataclasses.asdict(self.cfg),
                "settings": self.settings.to_dict(),
                "seed": job.seed,
                "device": str(self.device),
                "world_size": self.info.world,
                "train_cases": len(self.train_ids),
                "val_cases": len(self.val_ids),
                "val_samples": len(self.val_plan),
                "spec": self.spec.__dict__,
                "backbone_weights": backbone_record(job.backbone_weights),
                "meta": run_meta(),
            },
        )

    # -- the epochs ----------------------------------------------------------------------
    def step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One optimiser step on a batch already on the device; the loss."""
        _, loss = forward_loss(self.net, self.cfg, batch, self.autocast)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        return loss

    def limit_reached(self) -> str | None:
        """ "max_epochs" or "max_steps" when a limit stops training before the next epoch."""
        if self.epoch >= self.settings.max_epochs:
            return "max_epochs"
        return "max_steps" if self.steps_done else None

    @property
    def steps_done(self) -> bool:
        """True once `max_steps` (when given) optimiser steps are done."""
        return self.job.max_steps is not None and self.global_step >= self.job.max_steps

    def run_epoch(self) -> EpochStats:
        """Train through the epoch's plan (from `step_in_epoch`, so a resumed epoch goes on)."""
        job, s, info = self.job, self.settings, self.info
        plan = plan_epoch(self.train_cases, self.spec, [job.seed, TRAIN_PLAN, self.epoch])
        n_steps = steps_per_epoch(len(plan), s.batch_size, s.steps_per_epoch)
        sampler = PlanBatches(
            plan,
            batch_size=s.batch_size,
            steps=n_steps,
            item_words=[job.seed, TRAIN_ITEM, self.epoch],
            start_step=self.step_in_epoch,
            rank=info.rank,
            world=info.world,
        )
        loader = DataLoader(
            self.dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=s.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        t0, loss_sum, n_seen = time.perf_counter(), 0.0, 0
        bar = tqdm(
            loader,
            total=len(sampler),
            desc=f"{job.config} epoch {self.epoch}",
            unit="step",
            disable=not (job.progress and info.is_main),
            leave=False,
        )
        for batch in bar:
            loss_value = float(self.step(to_device(batch, self.device)).detach())
            self.global_step += 1
            self.step_in_epoch += 1
            fault_point("train.step")
            loss_sum += loss_value
            n_seen += 1
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{self.lr:.0e}")
            if self.steps_done:
                break
        bar.close()
        seconds = time.perf_counter() - t0
        return EpochStats(n_seen, loss_sum, seconds, self.step_in_epoch >= n_steps)

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def validate(self) -> dict[str, float]:
        """Validation figures of the current weights over the fixed validation plan (sharded
        over processes): ``val_loss``; ``val_dice``, the per-sample Dice with the LiTS empty
        rule averaged over samples and channels; ``val_dice_global``, each channel's Dice of
        all samples pooled (docs/training.md). All go into the epoch's log line."""
        model, plan, info = self.model, self.val_plan, self.info
        batch_size = self.settings.batch_size // info.world
        words = [self.job.seed, VAL_ITEM]
        model.eval()
        total, count = 0.0, 0
        sums = torch.zeros(3, self.cfg.out_channels, dtype=torch.float64)  # see _dice_sums
        mine = list(range(info.rank, len(plan), info.world))
        with torch.no_grad():
            for start in range(0, len(mine), batch_size):
                idx = mine[start : start + batch_size]
                items = [self.val_set[(int(plan[i][0]), int(plan[i][1]), (*words, i))] for i in idx]
                batch = to_device(collate(items), self.device)
                out, loss = forward_loss(model, self.cfg, batch, self.autocast)
                total += float(loss) * len(idx)
                count += len(idx)
                sums += _dice_sums(out["seg"], batch["mask"])
        model.train()
        summed = all_sum([total, float(count), *sums.flatten().tolist()], info, self.device)
        n = max(summed[1], 1.0)
        twice_inter, sizes, per_sample = torch.tensor(summed[2:], dtype=torch.float64).view(3, -1)
        seen = sizes > 0
        pooled = float((twice_inter[seen] / sizes[seen]).mean()) if seen.any() else 1.0
        return {
            "val_loss": summed[0] / n,
            "val_dice": float(per_sample.mean()) / n,
            "val_dice_global": pooled,
        }

    def plateau_signal(self, val: dict[str, float]) -> float:
        """The number the schedule and the best weights follow (lower is better): the
        validation loss (the paper's rule) or 1 - validation Dice (`plateau_on`)."""
        if self.settings.plateau_on == "val_dice":
            return 1.0 - val["val_dice"]
        return val["val_loss"]

    def end_epoch(self, stats: EpochStats, val: dict[str, float]) -> str | None:
        """Best weights, schedule at a complete epoch, log line, checkpoint; a stop reason."""
        s, reason = self.settings, None
        signal = self.plateau_signal(val)
        record = {
            "epoch": self.epoch,
            "step": self.global_step,
            "epoch_complete": stats.complete,
            "train_loss": stats.loss_sum / max(stats.steps, 1),
            **val,
            "signal": signal,
            "lr": self.lr,
            "seconds": stats.seconds,
            "samples_per_s": stats.steps * s.batch_size / max(stats.seconds, 1e-9),
        }
        self.record_best(signal, val["val_loss"])
        if stats.complete:
            action = self.plateau.step(signal)
            record["schedule"] = action
            if action == DECREASE:
                for group in self.opt.param_groups:
                    group["lr"] *= s.lr_factor
            elif action == STOP:
                reason = "schedule"
            self.epoch += 1
            self.step_in_epoch = 0
        self.log_line(record)
        fault_point("train.after_metrics_line")
        self.checkpoint()
        shown = (record["epoch"], record["train_loss"], signal, record["lr"])
        log.info("%s epoch %d: train %.4f val %.4f lr %.0e", self.job.config, *shown)
        return reason or ("max_steps" if self.steps_done else None)

    def record_best(self, signal: float, val_loss: float) -> None:
        """Keep ``best.pt`` when the schedule's validation signal improved."""
        if signal >= self.best.get("signal", self.best["val_loss"]):
            return
        self.best.update(signal=signal, val_loss=val_loss, epoch=self.epoch, step=self.global_step)
        if self.info.is_main:
            payload = self._identity()
            payload.pop("seed")
            payload.update(model=self.model.state_dict(), epoch=self.epoch)
            payload.update(step=self.global_step, val_loss=val_loss, signal=signal)
            ckpt.save(self.out / rundir.BEST_CHECKPOINT, payload)

    def _identity(self) -> dict[str, Any]:
        job = self.job
        return {
            "config_name": job.config,
            "profile": job.profile,
            "seed": job.seed,
            "model_config": self.cfg.to_dict(),
        }

    def log_line(self, record: dict[str, Any]) -> None:
        """Append one epoch's record to ``metrics.jsonl``."""
        if self.info.is_main:
            path = self.out / rundir.METRICS_JSONL  # appended to, never through a symlink
            fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what="log", links=True)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(sanitize(record)[0], allow_nan=False) + "\n")

    def checkpoint(self) -> None:
        """``checkpoint_last.pt``: everything a killed run needs to go on bit for bit."""
        if not self.info.is_main:
            return
        payload = self._identity()
        payload.update(
            model=self.model.state_dict(),
            optimizer=self.opt.state_dict(),
            plateau=self.plateau.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            step=self.global_step,
            best=self.best,
            rng=ckpt.rng_states(),
            settings=self.settings.to_dict(),
        )
        ckpt.save(self.out / rundir.LAST_CHECKPOINT, payload)

    # -- finish --------------------------------------------------------------------------
    def finish(self, reason: str) -> dict[str, Any]:
        """Write and return ``done.json``."""
        job, dev = self.job, str(self.device)
        done = {
            "config": job.config,
            "profile": job.profile,
            "seed": job.seed,
            "reason": reason,
            "epochs": self.epoch,
            "steps": self.global_step,
            "best_val_loss": self.best["val_loss"],
            "best_signal": self.best.get("signal"),
            "plateau_on": self.settings.plateau_on,
            "best_epoch": self.best["epoch"],
            "lr": self.lr,
            "lr_decreases": self.plateau.decreases,
            "device": dev,
            "world_size": self.info.world,
            "weights_sha256": weights_digest(self.model),
            "meta": run_meta(config=job.config, seed=job.seed, device=dev, profile=job.profile),
        }
        if self.info.is_main:
            dump_json(self.out / rundir.DONE_JSON, done)
        barrier(self.info)
        return done

    def run(self) -> dict[str, Any]:
        """prepare -> build -> (run_epoch, validate, end_epoch)* -> finish."""
        done = self.prepare()
        if done is not None:
            return done
        self.build()
        self.net.train()
        reason = None
        while reason is None:
            reason = self.limit_reached()
            if reason is None:
                stats = self.run_epoch()
                reason = self.end_epoch(stats, self.validate())
        return self.finish(reason)


def _dice_sums(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(3, C) float64 sums over a batch, per channel, of ``logits > 0`` against ``mask``:
    2|P∩R|, |P| + |R|, and the per-sample Dice with the LiTS empty rule (1 when both are
    empty, 0 when only one is)."""
    pred, ref = logits > 0, mask > 0.5
    inter = (pred & ref).sum(dim=(2, 3)).double()
    size = (pred.sum(dim=(2, 3)) + ref.sum(dim=(2, 3))).double()
    per_sample = torch.where(size > 0, 2 * inter / size.clamp(min=1), torch.ones_like(size))
    return torch.stack([2 * inter.sum(0), size.sum(0), per_sample.sum(0)]).cpu()


def run_job(job: TrainJob) -> dict[str, Any]:
    """Run `job` on its device (joining a torchrun process group when there is one)."""
    job = job.checked()
    info = dist_info()
    dev = resolve_device(job.device, info.local_rank)
    configure_cpu_threads(dev, job.profile)
    opened = init_group(info, dev)
    try:
        with _run_folder(job, info):
            return Trainer(job, info, dev).run()
    finally:
        if opened:
            torch.distributed.destroy_process_group()


def _run_folder(job: TrainJob, info: DistInfo):
    """The configuration's folder held for the whole job (by the main process; torchrun's
    other ranks work inside it): one `train` per configuration of a run, a second one is
    refused; configurations train side by side (the ablation's workers do). A non-empty
    folder that is not a training run is refused; temporaries a killed run of this
    configuration left are removed."""
    if not info.is_main:
        return contextlib.nullcontext(job.run_dir)
    return work_folder(
        job.run_dir,
        kind="train-run",
        inputs=[job.data_root],
        lock_name=f"{job.config}/{rundir.TRAIN_LOCK_FILE}",
        who=f"e2net-eval train of {job.config}",
        sweep=[rundir.config_dir(job.run_dir, job.config)],
    )


def train(
    config_name: str, data_root: str | Path, run_dir: str | Path, **options: Any
) -> dict[str, Any]:
    """Train `config_name` on the split's training cases; return the ``done.json`` record.

    `options` are `TrainJob` fields (split, split_seed, profile, max_steps, max_epochs,
    seed, device, resume, force, batch_size, steps_per_epoch, backbone_weights, cache_dir,
    num_workers, max_val_samples, context, progress). A finished configuration
    (``done.json``) is skipped unless `resume` raises a limit it stopped at
    (``max_steps``/``max_epochs``) or `force` starts it over.
    """
    return run_job(TrainJob(config_name, Path(data_root), Path(run_dir), **options))
