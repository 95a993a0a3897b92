"""Turns on what the trainers of a run share: the run's ``split.json`` and a slice cache
(another run's too) are written by one process at a time, under a waiting lock, after the
temporaries a killed writer left are removed. `prepare_run` makes both before trainers
start in parallel."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from e2net_eval import rundir
from e2net_eval.data.split import resolve_split
from e2net_eval.training.cache import SliceCache
from e2net_eval.training.distributed import DistInfo, dist_info
from e2net_eval.util.atomic import remove_stale_temporaries
from e2net_eval.util.lock import hold_waiting, lock_file_for
from e2net_eval.util.outdir import claim_run_folder, remove_temporaries_below


@contextlib.contextmanager
def split_turn(run_dir: Path, info: DistInfo) -> Iterator[None]:
    """The run's ``split.json``, shared by the configurations trained into it (the main
    process of each takes its turn)."""
    if not info.is_main:
        yield
        return
    with hold_waiting(Path(run_dir) / rundir.SHARED_LOCK_FILE):
        remove_stale_temporaries(Path(run_dir), rundir.SPLIT_JSON)
        yield


@contextlib.contextmanager
def cache_turn(cache: Path) -> Iterator[None]:
    """A slice cache, shared by every trainer that reads it (the lock lies beside it)."""
    with hold_waiting(lock_file_for(Path(cache))):
        if Path(cache).is_dir():
            remove_temporaries_below(Path(cache))
        yield


def cache_folder(run_dir: Path, cache_dir: str | Path | None) -> Path:
    """The slice cache a training run reads: its own ``RUN/cache`` unless one is given."""
    return Path(cache_dir) if cache_dir is not None else Path(run_dir) / rundir.CACHE_DIR


def prepare_run(
    data_root: str | Path,
    run_dir: str | Path,
    *,
    split: str | Path | None = None,
    split_seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> Path:
    """Claim `run_dir` as a training run (refused when it is another folder), write its
    split and build the slice cache of its cases (what every configuration's training reads
    first), so trainers started in parallel find them ready. `cache_dir`: another run's
    cache to share (default ``RUN/cache``). Returns the cache folder."""
    run_dir = Path(run_dir)
    cache = SliceCache(cache_folder(run_dir, cache_dir), data_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    with split_turn(run_dir, dist_info()):
        claim_run_folder(run_dir, "train-run", ignore={rundir.SHARED_LOCK_FILE})
        train_ids, val_ids = resolve_split(
            run_dir, cache.case_ids(), split, seed=split_seed, write=True
        )
    with cache_turn(cache.dir):
        cache.build(train_ids + val_ids, progress=progress)
    return cache.dir
