"""Train one configuration (stage 1 or a stage-2 variant) into a run directory.

The loop is the paper's: SGD (momentum 0.9, lr 0.01), the validation loss after every
epoch, lr / 10 on a plateau, stop at the plateau after the second decrease (schedule.py),
or at ``max_epochs`` / ``max_steps``. On CUDA it runs in mixed precision (bf16 where the
card has it, else fp16 with a gradient scaler) and channels-last; under ``torchrun`` it
wraps the model in DistributedDataParallel. On the CPU it is deterministic for a seed.

`train(...)` builds a `TrainJob` (everything one invocation asks for) and runs a `Trainer`,
whose steps are methods: `prepare` (split, skip or resume decision), `build` (caches,
network, optimiser, restored state), `run_epoch`, `validate`, `end_epoch` (schedule, best
weights, log line, checkpoint) and `finish` (``done.json``). The resume rules are plain
functions (`resume_decision`, `check_resumable`) that need no training to test.
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
from e2net_eval.training.schedule import DECREASE, STOP, Plateau
from e2net_eval.training.settings import TrainSettings, settings_for
from e2net_eval.util.atomic import remove_stale_temporaries, write_text
from e2net_eval.util.faults import fault_point
from e2net_eval.util.jsonio import dump_json, load_json, sanitize
from e2net_eval.util.lock import hold_waiting, lock_file_for, open_regular
from e2net_eval.util.meta import run_meta
from e2net_eval.util.outdir import remove_temporaries_below, work_folder
from e2net_eval.util.reading import decoding
from e2net_eval.util.seed import seed_everything

log = logging.getLogger(__name__)

#: Settings a resumed run may change: limits and loader processes, not the optimisation.
RESUMABLE = ("max_epochs", "num_workers", "steps_per_epoch")
#: What `resume_decision` says to do with a configuration folder.
START, START_OVER, SKIP, CONTINUE, REFUSE = "start", "start over", "skip", "continue", "refuse"


@dataclass(frozen=True)
class TrainJob:
    """One invocation of `train`: what to train, where, with which limits and overrides.

    None means the profile's value (batch_size, steps_per_epoch, max_epochs, num_workers,
    max_val_samples) or the configuration's (context)."""

    config: str
    data_root: Path | None
    run_dir: Path | None
    split: str | Path | None = None
    split_seed: int = 0
    profile: str = "small"
    max_steps: int | None = None
    max_epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    force: bool = False
    batch_size: int | None = None
    steps_per_epoch: int | None = None
    backbone_weights: str | Path | None = None
    cache_dir: str | Path | None = None  # None: RUN/cache (another run's cache may be shared)
    num_workers: int | None = None
    max_val_samples: int | None = None
    context: int | None = None
    progress: bool = True

    def settings(self, cuda: bool) -> TrainSettings:
        """The profile's hyper-parameters with this job's overrides."""
        return settings_for(
            self.profile,
            cuda=cuda,
            batch_size=self.batch_size,
            steps_per_epoch=self.steps_per_epoch,
            max_epochs=self.max_epochs,
            num_workers=self.num_workers,
            max_val_samples=self.max_val_samples,
        )


@dataclass
class EpochStats:
    """What one pass of `Trainer.run_epoch` did."""

    steps: int
    loss_sum: float
    seconds: float
    complete: bool


def resume_decision(
    done: dict[str, Any] | None,
    has_checkpoint: bool,
    *,
    resume: bool,
    force: bool,
    max_steps: int | None,
    max_epochs: int | None,
) -> str:
    """What to do with a configuration folder holding `done` (its ``done.json`` or None) and
    maybe a last checkpoint: START, START_OVER (`force`), SKIP (done, and no raised limit to
    resume to), CONTINUE (from the checkpoint) or REFUSE (a checkpoint but no `resume`)."""
    if force:
        return START_OVER
    if done is not None:
        more_steps = (
            max_steps is not None
            and done.get("reason") == "max_steps"
            and max_steps > done["steps"]
        )
        more_epochs = (
            max_epochs is not None
            and done.get("reason") == "max_epochs"
            and max_epochs > done["epochs"]
        )
        if not (resume and (more_steps or more_epochs)):
            return SKIP
    if has_checkpoint:
        return CONTINUE if resume else REFUSE
    return START


def changed_settings(old: dict, new: dict) -> list[str]:
    """Names of settings that differ between a checkpoint and this invocation (lists and
    tuples compare by value; the `RESUMABLE` ones may differ)."""

    def differs(key: str) -> bool:
        a, b = old.get(key), new.get(key)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return list(a) != list(b)
        return a != b

    return sorted(k for k in set(old) | set(new) if k not in RESUMABLE and differs(k))


def check_resumable(
    state: dict[str, Any], seed: int, settings: TrainSettings, path: Path | None = None
) -> None:
    """Refuse to resume a checkpoint (at `path`, named in the error) with another seed or
    other optimisation settings."""
    if state["seed"] != seed:
        raise InputError(
            f"resume with seed {seed}, the run was started with {state['seed']}", path=path
        )
    changed = changed_settings(state["settings"], settings.to_dict())
    if changed:
        raise InputError(f"resume with different settings than the run's: {changed}", path=path)


def train_step(net, cfg, batch, opt, autocast, scaler) -> torch.Tensor:
    """One optimiser step on `batch` (forward under autocast, loss in float32); the loss."""
    from reference_models.losses import objective

    with autocast():
        outputs = net(batch["image"])
    outputs = {k: v.float() for k, v in outputs.items()}
    loss, _ = objective(cfg, outputs, batch["mask"], batch.get("edge"))
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return loss


class Trainer:
    """One configuration's training; see the module docstring for the order of the steps."""

    def __init__(self, job: TrainJob, info: DistInfo, device: torch.device):
        self.job, self.info, self.device = job, info, device
        self.settings = job.settings(cuda=device.type == "cuda")
        self.state: dict[str, Any] | None = None
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.best: dict[str, Any] = {
            "signal": float("inf"),
            "val_loss": None,
            "epoch": None,
            "step": None,
        }
        if job.run_dir is not None:
            self.out = rundir.config_dir(job.run_dir, job.config)

    # -- prepare: split, skip or resume ---------------------------------------------------
    def prepare(self) -> dict[str, Any] | None:
        """Check the split, decide skip/resume; the ``done.json`` record when skipping."""
        job, info = self.job, self.info
        run_dir = Path(job.run_dir)
        self.cache = SliceCache(_cache_folder(run_dir, job.cache_dir), job.data_root)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        # the run's one split is checked first: a different one is an error even when done
        with _split_turn(run_dir, info):
            self.train_ids, self.val_ids = resolve_split(
                run_dir, self.cache.case_ids(), job.split, seed=job.split_seed, write=info.is_main
            )
        done_path = self.out / rundir.DONE_JSON
        last_path = self.out / rundir.LAST_CHECKPOINT
        done = load_json(done_path) if done_path.is_file() else None
        action = resume_decision(
            done,
            last_path.is_file(),
            resume=job.resume,
            force=job.force,
            max_steps=job.max_steps,
            max_epochs=job.max_epochs,
        )
        if action == SKIP:
            log.info("%s is done (%s); skipping", job.config, done.get("reason"))
            return done
        if action == REFUSE:
            raise InputError(
                f"{job.config} already has a checkpoint; pass --resume to continue or --force"
                " to start over",
                path=last_path,
            )
        if action == START_OVER:
            if info.is_main:  # nothing of the old attempt may leak into the new one
                for name in rundir.ATTEMPT_FILES:
                    (self.out / name).unlink(missing_ok=True)
            barrier(info)
        if action == CONTINUE:
            self.state = ckpt.load(last_path)
        if info.is_main and action in (START, CONTINUE):
            self.reconcile_log()
        if self.settings.batch_size % info.world:
            raise InputError(
                f"batch size {self.settings.batch_size} is not divisible by {info.world} processes"
            )
        if self.state is not None:
            check_resumable(self.state, job.seed, self.settings, last_path)
        return None

    def reconcile_log(self) -> None:
        """Make ``metrics.jsonl`` agree with the checkpoint training goes on from.

        A line is appended before its checkpoint is written, so a run killed between the two
        left a line the resumed run writes again: keep only the lines up to the
        checkpoint's step (none when there is no checkpoint: that attempt never saved one,
        and its ``best.pt`` goes too). A torn last line is dropped with them.
        """
        keep_step = -1 if self.state is None else int(self.state["step"])
        if self.state is None:
            (self.out / rundir.BEST_CHECKPOINT).unlink(missing_ok=True)
        path = self.out / rundir.METRICS_JSONL
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in lines if _line_step(ln) <= keep_step]
        if kept != lines:
            log.info(
                "metrics.jsonl: %d line(s) after the checkpoint dropped", len(lines) - len(kept)
            )
            write_text(path, "".join(f"{ln}\n" for ln in kept))

    # -- build: data, network, optimiser, restored state ---------------------------------
    def build(self) -> None:
        """Everything the epochs need, in the order that keeps a seed's run bit-identical."""
        job, info = self.job, self.info
        seed_everything(job.seed, deterministic=self.device.type == "cpu")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if info.is_main:
            with _cache_turn(self.cache.dir):
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
        import reference_models

        job = self.job
        torch.manual_seed(job.seed)
        overrides = {} if job.context is None else {"context": job.context}
        model = reference_models.create_model(job.config, profile=job.profile, **overrides)
        if self.state is not None and self.state.get("model_config") not in (
            None,
            model.config.to_dict(),
        ):
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
        return train_step(self.net, self.cfg, batch, self.opt, self.autocast, self.scaler)

    def limit_reached(self) -> str | None:
        """ "max_epochs" or "max_steps" when a limit stops training before the next epoch."""
        if self.epoch >= self.settings.max_epochs:
            return "max_epochs"
        if self.job.max_steps is not None and self.global_step >= self.job.max_steps:
            return "max_steps"
        return None

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
            if job.max_steps is not None and self.global_step >= job.max_steps:
                break
        bar.close()
        seconds = time.perf_counter() - t0
        return EpochStats(n_seen, loss_sum, seconds, self.step_in_epoch >= n_steps)

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def validate(self) -> dict[str, float]:
        """Validation figures of the current weights over the fixed validation plan (sharded
        over processes): ``val_loss``, the mean loss; ``val_dice``, the mean over the output
        channels (liver; liver and tumour) of the Dice of ``sigmoid(seg) > 0.5`` per sample,
        averaged over the samples, with the LiTS rule for empty masks (1 when both are
        empty, 0 when only one is: a false tumour on a tumour-free slice costs a whole
        sample, as it costs a whole case in the Dice per case); and ``val_dice_global``,
        each channel's Dice over all samples pooled. `plateau_signal` picks what the
        schedule and the best-weights choice follow; all go into the epoch's log line."""
        from reference_models.losses import objective

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
                with self.autocast():
                    out = model(batch["image"])
                out = {k: v.float() for k, v in out.items()}
                loss, _ = objective(self.cfg, out, batch["mask"], batch.get("edge"))
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
        log.info(
            "%s epoch %d: train %.4f val %.4f lr %.0e",
            self.job.config,
            record["epoch"],
            record["train_loss"],
            signal,
            record["lr"],
        )
        if reason is None and self.job.max_steps is not None:
            reason = "max_steps" if self.global_step >= self.job.max_steps else None
        return reason

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


def prepare_run(
    data_root: str | Path,
    run_dir: str | Path,
    *,
    split: str | Path | None = None,
    split_seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> Path:
    """Write the run's split and build the slice cache of its cases (what every
    configuration's training reads first), so trainers started in parallel find them
    ready. `cache_dir`: another run's cache to share (default ``RUN/cache``). Returns the
    cache folder."""
    run_dir = Path(run_dir)
    cache = SliceCache(_cache_folder(run_dir, cache_dir), data_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _split_turn(run_dir, dist_info()):
        train_ids, val_ids = resolve_split(
            run_dir, cache.case_ids(), split, seed=split_seed, write=True
        )
    with _cache_turn(cache.dir):
        cache.build(train_ids + val_ids, progress=progress)
    return cache.dir


def _cache_folder(run_dir: Path, cache_dir: str | Path | None) -> Path:
    """The slice cache a training run reads: its own ``RUN/cache`` unless one is given."""
    return Path(cache_dir) if cache_dir is not None else Path(run_dir) / rundir.CACHE_DIR


def run_job(job: TrainJob) -> dict[str, Any]:
    """Run `job` on its device (joining a torchrun process group when there is one)."""
    import reference_models

    if job.config not in reference_models.list_models():
        raise InputError(
            f"unknown configuration {job.config!r}; one of {reference_models.list_models()}"
        )
    if job.profile not in reference_models.list_profiles():
        raise InputError(
            f"unknown profile {job.profile!r}; one of {reference_models.list_profiles()}"
        )
    job = dataclasses.replace(job, data_root=Path(job.data_root), run_dir=Path(job.run_dir))
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


@contextlib.contextmanager
def _split_turn(run_dir: Path, info: DistInfo):
    """The run's ``split.json``, shared by the configurations trained into it: its writers
    take turns (a waiting lock), and a temporary a killed writer left goes first."""
    if not info.is_main:
        yield
        return
    with hold_waiting(Path(run_dir) / rundir.SHARED_LOCK_FILE):
        remove_stale_temporaries(Path(run_dir), rundir.SPLIT_JSON)
        yield


@contextlib.contextmanager
def _cache_turn(cache: Path):
    """A slice cache, shared by every trainer that reads it (another run's too): builders
    take turns under a waiting lock beside it, and temporaries a killed builder left go."""
    with hold_waiting(lock_file_for(Path(cache))):
        if Path(cache).is_dir():
            remove_temporaries_below(Path(cache))
        yield


def _line_step(line: str) -> float:
    """The ``step`` of a metrics.jsonl line (infinity for a torn or foreign line)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return float("inf")


def train(
    config_name: str,
    data_root: str | Path,
    run_dir: str | Path,
    *,
    steps_per_epoch_cap: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train `config_name` on the split's training cases; return the ``done.json`` record.

    `options` are `TrainJob` fields (split, split_seed, profile, max_steps, max_epochs,
    seed, device, resume, force, batch_size, backbone_weights, cache_dir, num_workers,
    max_val_samples, context, progress); `steps_per_epoch_cap` caps an epoch's steps.
    A finished configuration (``done.json``) is skipped unless `resume` raises a limit it
    stopped at (``max_steps``/``max_epochs``) or `force` starts it over.
    """
    job = TrainJob(
        config_name, Path(data_root), Path(run_dir), steps_per_epoch=steps_per_epoch_cap, **options
    )
    return run_job(job)
