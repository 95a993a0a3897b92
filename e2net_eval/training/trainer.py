"""Train one configuration (stage 1 or a stage-2 variant) into a run directory.

The loop is the paper's: SGD (momentum 0.9, lr 0.01), the validation loss after every
epoch, lr / 10 on a plateau, stop at the plateau after the second decrease (schedule.py),
or at ``max_epochs`` / ``max_steps``. On CUDA it runs in mixed precision (bf16 where the
card has it, else fp16 with a gradient scaler) and channels-last; under ``torchrun`` it
wraps the model in DistributedDataParallel. On the CPU it is deterministic for a seed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from e2net_eval.errors import InputError
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
from e2net_eval.training.distributed import all_sum, barrier, dist_info, init_group
from e2net_eval.training.geometry import scaled_pixels
from e2net_eval.training.rundir import config_dir, resolve_split
from e2net_eval.training.runtime import (
    amp_setup,
    configure_cpu_threads,
    load_backbone,
    resolve_device,
    to_device,
    train_step,
    weights_digest,
)
from e2net_eval.training.schedule import DECREASE, STOP, Plateau
from e2net_eval.training.settings import TrainSettings, settings_for
from e2net_eval.util.jsonio import dump_json, load_json, sanitize
from e2net_eval.util.meta import run_meta
from e2net_eval.util.seed import seed_everything

log = logging.getLogger(__name__)


#: Settings a resumed run may change: limits and loader processes, not the optimisation.
_RESUMABLE = ("max_epochs", "num_workers", "steps_per_epoch")


def _changed_settings(old: dict, new: dict) -> list[str]:
    """Names of settings that differ between a checkpoint and this invocation."""
    return sorted(
        k for k in set(old) | set(new)
        if k not in _RESUMABLE and old.get(k) != new.get(k) and not (
            isinstance(old.get(k), (list, tuple)) and list(old[k]) == list(new.get(k, ()))
        )
    )  # fmt: skip


def _plain(obj: Any) -> Any:
    """A dataclass as a dict (for JSON), anything else unchanged."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def _validate(model, dataset, plan, batch_size, words, info, device, autocast, objective, cfg):
    """Mean validation loss over the fixed validation plan (sharded over processes)."""
    model.eval()
    total, count = 0.0, 0
    mine = list(range(info.rank, len(plan), info.world))
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            idx = mine[start : start + batch_size]
            items = [dataset[(int(plan[i][0]), int(plan[i][1]), (*words, i))] for i in idx]
            batch = to_device(collate(items), device)
            with autocast():
                out = model(batch["image"])
            out = {k: v.float() for k, v in out.items()}
            loss, _ = objective(cfg, out, batch["mask"], batch.get("edge"))
            total += float(loss) * len(idx)
            count += len(idx)
    model.train()
    total, count = all_sum([total, float(count)], info, device)
    return total / max(count, 1.0)


def train(
    config_name: str,
    data_root: str | Path,
    run_dir: str | Path,
    *,
    split: str | Path | None = None,
    split_seed: int = 0,
    profile: str = "small",
    max_steps: int | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    batch_size: int | None = None,
    steps_per_epoch_cap: int | None = None,
    backbone_weights: str | Path | None = None,
    num_workers: int | None = None,
    max_val_samples: int | None = None,
    context: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train `config_name` on the split's training cases; return the ``done.json`` record.

    A finished configuration (``done.json``) is skipped unless `resume` raises a limit it
    stopped at (``max_steps``/``max_epochs``) or `force` starts it over.
    """
    import reference_models
    from reference_models.losses import objective

    if config_name not in reference_models.list_models():
        raise InputError(
            f"unknown configuration {config_name!r}; one of {reference_models.list_models()}"
        )
    info = dist_info()
    dev = resolve_device(device, info)
    configure_cpu_threads(dev, profile)
    opened = init_group(info, dev)
    try:
        return _train(
            config_name, Path(data_root), Path(run_dir), split, split_seed, profile, max_steps, max_epochs,
            seed, dev, resume, force, batch_size, steps_per_epoch_cap, backbone_weights,
            num_workers, max_val_samples, context, progress, info, objective,
        )  # fmt: skip
    finally:
        if opened:
            torch.distributed.destroy_process_group()


def _train(
    config_name, data_root, run_dir, split, split_seed, profile, max_steps, max_epochs, seed, dev, resume,
    force, batch_size, spe_cap, backbone_weights, num_workers, max_val, context, progress, info,
    objective,
) -> dict[str, Any]:  # fmt: skip
    import reference_models

    out = config_dir(run_dir, config_name)
    done_path, last_path = out / "done.json", out / "checkpoint_last.pt"
    cache = SliceCache(run_dir / "cache", data_root)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    # the run's one split is checked first: a different one is an error even for a done config
    train_ids, val_ids = resolve_split(
        run_dir, cache.case_ids(), split, seed=split_seed, write=info.is_main
    )
    state = None
    if force:
        if info.is_main:  # start over: nothing of the old attempt may leak into the new one
            for name in ("done.json", "checkpoint_last.pt", "best.pt", "metrics.jsonl"):
                (out / name).unlink(missing_ok=True)
        barrier(info)
    elif done_path.is_file():
        done = load_json(done_path)
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
            log.info("%s is done (%s); skipping", config_name, done.get("reason"))
            return done
    if not force and last_path.is_file():
        if not resume:
            raise InputError(
                f"{config_name} already has a checkpoint; pass --resume to continue or --force"
                " to start over",
                path=last_path,
            )
        state = ckpt.load(last_path)
    settings: TrainSettings = settings_for(
        profile, cuda=dev.type == "cuda", batch_size=batch_size, steps_per_epoch=spe_cap,
        max_epochs=max_epochs, num_workers=num_workers, max_val_samples=max_val,
    )  # fmt: skip
    if settings.batch_size % info.world:
        raise InputError(
            f"batch size {settings.batch_size} is not divisible by {info.world} processes"
        )
    if state is not None:
        if state["seed"] != seed:
            raise InputError(f"resume with seed {seed}, the run was started with {state['seed']}")
        changed = _changed_settings(state["settings"], settings.to_dict())
        if changed:
            raise InputError(f"resume with different settings than the run's: {changed}")

    seed_everything(seed, deterministic=dev.type == "cpu")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True

    if info.is_main:
        cache.build(train_ids + val_ids, progress=progress)
    barrier(info)
    train_cases = cache.open(train_ids, progress=False)
    val_cases = cache.open(val_ids, progress=False)

    torch.manual_seed(seed)
    overrides = {} if context is None else {"context": context}
    model = reference_models.create_model(config_name, profile=profile, **overrides)
    cfg = model.config
    if state is not None and state.get("model_config") not in (None, cfg.to_dict()):
        raise InputError(f"resume with a different network than the run's ({config_name})")
    if backbone_weights is not None and state is None:
        n = load_backbone(model, backbone_weights)
        log.info("loaded backbone weights into %d encoder(s) from %s", n, backbone_weights)
    margin = tuple(scaled_pixels(p, cfg.input_size) for p in settings.margin_px)
    spec = SliceSpec(
        stage=cfg.stage, input_size=cfg.input_size, in_channels=model.in_channels,
        edge_target=cfg.edge_target if cfg.stage == 2 else "none", margin=margin,
        neg_ratio=settings.neg_ratio,
    )  # fmt: skip
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )  # fmt: skip
    plateau = Plateau(
        patience=settings.patience, threshold=settings.plateau_threshold,
        factor=settings.lr_factor, max_decreases=settings.lr_decreases,
    )  # fmt: skip
    autocast, scaler = amp_setup(dev)
    epoch, step_in_epoch, global_step = 0, 0, 0
    best = {"val_loss": float("inf"), "epoch": None, "step": None}
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        plateau.load_state_dict(state["plateau"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["step"]
        best = state["best"]
        ckpt.set_rng_states(state["rng"])
        log.info("resuming %s at epoch %d, step %d", config_name, epoch, global_step)
    net = model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    dataset = SliceDataset(train_cases, spec)
    val_set = SliceDataset(val_cases, spec)
    val_plan = plan_epoch(val_cases, spec, [seed, VAL_PLAN, 0])[: settings.max_val_samples]
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        dump_json(out / "settings.json", {
            "config": config_name, "model_config": _plain(cfg), "settings": settings.to_dict(),
            "seed": seed, "device": str(dev), "world_size": info.world,
            "train_cases": len(train_ids), "val_cases": len(val_ids),
            "val_samples": len(val_plan), "spec": spec.__dict__, "meta": run_meta(),
        })  # fmt: skip

    def save_state(path: Path) -> None:
        if info.is_main:
            ckpt.save(path, {
                "config_name": config_name, "profile": profile, "seed": seed,
                "model_config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                "plateau": plateau.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch, "step_in_epoch": step_in_epoch, "step": global_step,
                "best": best, "rng": ckpt.rng_states(), "settings": settings.to_dict(),
            })  # fmt: skip

    def log_line(record: dict) -> None:
        if info.is_main:
            with open(out / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(sanitize(record)[0], allow_nan=False) + "\n")

    def record_val(val_loss: float) -> None:
        if val_loss < best["val_loss"]:
            best.update(val_loss=val_loss, epoch=epoch, step=global_step)
            if info.is_main:
                ckpt.save(out / "best.pt", {
                    "config_name": config_name, "profile": profile,
                    "model_config": cfg.to_dict(), "model": model.state_dict(),
                    "epoch": epoch, "step": global_step, "val_loss": val_loss,
                })  # fmt: skip

    reason = None
    net.train()
    while reason is None:
        if epoch >= settings.max_epochs:
            reason = "max_epochs"
            break
        if max_steps is not None and global_step >= max_steps:
            reason = "max_steps"
            break
        plan = plan_epoch(train_cases, spec, [seed, TRAIN_PLAN, epoch])
        n_steps = steps_per_epoch(len(plan), settings.batch_size, settings.steps_per_epoch)
        sampler = PlanBatches(
            plan, batch_size=settings.batch_size, steps=n_steps,
            item_words=[seed, TRAIN_ITEM, epoch], start_step=step_in_epoch,
            rank=info.rank, world=info.world,
        )  # fmt: skip
        loader = DataLoader(
            dataset, batch_sampler=sampler, collate_fn=collate,
            num_workers=settings.num_workers, pin_memory=dev.type == "cuda",
        )  # fmt: skip
        t0, loss_sum, n_seen = time.perf_counter(), 0.0, 0
        bar = tqdm(
            loader, total=len(sampler), desc=f"{config_name} epoch {epoch}", unit="step",
            disable=not (progress and info.is_main), leave=False,
        )  # fmt: skip
        for batch in bar:
            batch = to_device(batch, dev)
            loss = train_step(net, cfg, batch, opt, autocast, scaler)
            global_step += 1
            step_in_epoch += 1
            loss_value = float(loss.detach())
            loss_sum += loss_value
            n_seen += 1
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{opt.param_groups[0]['lr']:.0e}")
            if max_steps is not None and global_step >= max_steps:
                break
        bar.close()
        seconds = time.perf_counter() - t0
        epoch_done = step_in_epoch >= n_steps
        val_loss = _validate(
            model, val_set, val_plan, settings.batch_size // info.world, [seed, VAL_ITEM],
            info, dev, autocast, objective, cfg,
        )  # fmt: skip
        lr = opt.param_groups[0]["lr"]
        record = {
            "epoch": epoch, "step": global_step, "epoch_complete": epoch_done,
            "train_loss": loss_sum / max(n_seen, 1), "val_loss": val_loss, "lr": lr,
            "seconds": seconds, "samples_per_s": n_seen * settings.batch_size / max(seconds, 1e-9),
        }  # fmt: skip
        record_val(val_loss)
        if epoch_done:
            action = plateau.step(val_loss)
            record["schedule"] = action
            if action == DECREASE:
                for group in opt.param_groups:
                    group["lr"] *= settings.lr_factor
            elif action == STOP:
                reason = "schedule"
            epoch += 1
            step_in_epoch = 0
        log_line(record)
        save_state(last_path)
        log.info("%s epoch %d: train %.4f val %.4f lr %.0e", config_name, record["epoch"],
                 record["train_loss"], val_loss, lr)  # fmt: skip
        if reason is None and max_steps is not None and global_step >= max_steps:
            reason = "max_steps"
    done = {
        "config": config_name, "profile": profile, "seed": seed, "reason": reason,
        "epochs": epoch, "steps": global_step, "best_val_loss": best["val_loss"],
        "best_epoch": best["epoch"], "lr": opt.param_groups[0]["lr"],
        "lr_decreases": plateau.decreases, "device": str(dev), "world_size": info.world,
        "weights_sha256": weights_digest(model),
        "meta": run_meta(config=config_name, seed=seed, device=str(dev), profile=profile),
    }  # fmt: skip
    if info.is_main:
        dump_json(done_path, done)
    barrier(info)
    return done
