"""The run directory: one layout, written by training and the ablation, read by the rest.

Layouts: docs/architecture.md, "Run directories"; docs/training.md, "Run directory";
docs/reports.md, "Run directory layout"; locks: docs/reliability.md. The writers
(training/, workflows/ablation/) own this layout; the readers (inference, report, regress)
take every path from here. The module imports no torch and no numpy, so light commands can
use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from reference_models.registry import stage2_preference

# -- a training run ----------------------------------------------------------------------
SPLIT_JSON = "split.json"
CACHE_DIR = "cache"
SETTINGS_JSON = "settings.json"
LAST_CHECKPOINT = "checkpoint_last.pt"
BEST_CHECKPOINT = "best.pt"
METRICS_JSONL = "metrics.jsonl"
DONE_JSON = "done.json"
TRAIN_LOCK_FILE = ".train.lock"  # util.outdir.work_folder: one `train` per configuration
SHARED_LOCK_FILE = ".shared.lock"  # the split's turn (training/turns.py); a cache has its own
#: What `--force` removes from a configuration folder before starting over.
ATTEMPT_FILES = (DONE_JSON, LAST_CHECKPOINT, BEST_CHECKPOINT, METRICS_JSONL)

# -- an ablation run ---------------------------------------------------------------------
ABLATION_JSON = "ablation.json"
STATE_JSON = "ablation_state.json"
LOCK_FILE = ".ablation.lock"
JOBS_DIR = "jobs"
SETS = ("lits_val", "ircadb")
SET_TITLES = {"lits_val": "LiTS validation", "ircadb": "3DIRCADb"}
SUMMARY_JSON = "summary.json"
PER_CASE_CSV = "per_case.csv"


def config_dir(run_dir: str | Path, config: str) -> Path:
    """``RUN/<config>``: one trained configuration of a training run."""
    return Path(run_dir) / config


def weights_path(run_dir: str | Path, config: str) -> Path | None:
    """The weights `predict` uses: ``best.pt``, else ``checkpoint_last.pt``, else None."""
    folder = config_dir(run_dir, config)
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        if (folder / name).is_file():
            return folder / name
    return None


def trained_configs(run_dir: str | Path) -> list[str]:
    """Configurations of the training run that have weights to predict with."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.is_dir() and weights_path(run_dir, p.name))


def default_stage2(run_dir: str | Path) -> str | None:
    """The most complete stage-2 configuration trained in the run (catalogue order), or None."""
    have = set(trained_configs(run_dir))
    return next((c for c in stage2_preference() if c in have), None)


def split_lists(split: dict[str, Any], path: str | Path | None = None) -> tuple[list, list]:
    """(train ids, validation ids) of a split dict: the one reader of split files."""
    train, val = split.get("train"), split.get("validation")
    if not isinstance(train, list) or not isinstance(val, list) or not train or not val:
        raise InputError(
            "a split needs non-empty 'train' and 'validation' lists of case ids", path=path
        )
    overlap = set(map(str, train)) & set(map(str, val))
    if overlap:
        raise InputError(f"cases in both train and validation: {sorted(overlap)[:5]}", path=path)
    return [str(c) for c in train], [str(c) for c in val]


def train_dir(run: str | Path) -> Path:
    """``RUN/train``: the ablation's training run."""
    return Path(run) / "train"


def data_dir(run: str | Path, name: str) -> Path:
    """``RUN/data/<name>``: a phantom data set the ablation generated."""
    return Path(run) / "data" / name


def pred_dir(run: str | Path, set_name: str, config: str) -> Path:
    return Path(run) / "pred" / set_name / config


def eval_dir(run: str | Path, set_name: str, config: str) -> Path:
    return Path(run) / "eval" / set_name / config


def report_dir(run: str | Path) -> Path:
    return Path(run) / "report"


#: Replicates r >= 1 of an ablation run live in ``RUN/replicates/<r>/``.
REPLICATES_DIR = "replicates"


def replicate_dir(run: str | Path, index: int) -> Path:
    """``RUN`` for replicate 0, ``RUN/replicates/<index>`` after it; every path function
    above takes it in place of ``RUN``."""
    if index < 0:
        raise ValueError(f"replicate index {index} < 0")
    return Path(run) if index == 0 else Path(run) / REPLICATES_DIR / str(index)


def shared_cache(run: str | Path) -> Path:
    """Replicate 0's ``RUN/train/cache``, which every replicate's training reads."""
    return train_dir(run) / CACHE_DIR


def replicate_indices(run: str | Path) -> list[int]:
    """Replicates of an ablation run found on disk: 0, then ``RUN/replicates/<r>`` in order."""
    base = Path(run) / REPLICATES_DIR
    found = [0]
    if base.is_dir():
        found += sorted(
            int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name)
        )
    return found


def replicate_summaries(run: str | Path) -> dict[int, dict[tuple[str, str], Path]]:
    """`eval_summaries` of every replicate on disk that has any, by replicate index."""
    found = {r: eval_summaries(replicate_dir(run, r)) for r in replicate_indices(run)}
    return {r: s for r, s in found.items() if s}


def jobs_dir(run: str | Path) -> Path:
    """``RUN/jobs``: the cluster launcher's submitit folder (scripts, pickles, job logs)."""
    return Path(run) / JOBS_DIR


def is_ablation_run(path: str | Path) -> bool:
    """True when `path` holds an ablation run (its ``ablation.json``)."""
    return (Path(path) / ABLATION_JSON).is_file()


def eval_summaries(run: str | Path) -> dict[tuple[str, str], Path]:
    """Every ``RUN/eval/<set>/<config>/summary.json`` of an ablation run, by (set, config)."""
    found = {}
    for set_name in SETS:
        base = Path(run) / "eval" / set_name
        if not base.is_dir():
            continue
        for cfg in sorted(p for p in base.iterdir() if p.is_dir()):
            if (cfg / SUMMARY_JSON).is_file():
                found[(set_name, cfg.name)] = cfg / SUMMARY_JSON
    return found
