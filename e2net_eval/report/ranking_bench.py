"""`e2net-eval bench rank`: the ranking engine against challengeR on the same data, in
the same run. The data: `n_tasks` tasks of `n_entries` entries x `n_cases` cases, each
entry a shifted copy of a per-case difficulty plus noise (higher is better, no ties)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from e2net_eval.errors import InputError
from e2net_eval.report.ranking_report import Request, rank_frame

log = logging.getLogger(__name__)
SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "challenger_agreement.R"


def bench_frame(n_entries: int, n_cases: int, n_tasks: int, seed: int) -> pd.DataFrame:
    """The generated long frame (``task, entry, case, value``)."""
    rng = np.random.default_rng(seed)
    parts = []
    for t in range(n_tasks):
        difficulty = rng.normal(0.8, 0.1, n_cases)
        skill = rng.normal(0, 0.03, n_entries)
        values = difficulty[None, :] + skill[:, None] + rng.normal(0, 0.05, (n_entries, n_cases))
        e, c = np.meshgrid(np.arange(n_entries), np.arange(n_cases), indexing="ij")
        entry, case = [f"E{i + 1:02d}" for i in e.ravel()], [f"C{i + 1:03d}" for i in c.ravel()]
        frame = {"task": f"T{t + 1}", "entry": entry, "case": case, "value": values.ravel()}
        parts.append(pd.DataFrame(frame))
    return pd.concat(parts, ignore_index=True)


def time_challenger(src: Path, frame: pd.DataFrame, n_boot: int, seed: int) -> tuple[float, float]:
    """(seconds of challengeR's bootstraps of the four methods, seconds of the whole
    Rscript run) on `frame`."""
    if not shutil.which("Rscript"):
        raise InputError("Rscript not found: install R to time challengeR (docs/reports.md)")
    with tempfile.TemporaryDirectory(prefix="e2net-bench-rank-") as tmp:
        data = Path(tmp) / "data.csv"
        frame.to_csv(data, index=False)
        args = [str(src), str(data), str(Path(tmp) / "out"), "na.rm", str(n_boot), str(seed)]
        start = time.perf_counter()
        done = subprocess.run(["Rscript", str(SCRIPT), *args], capture_output=True, text=True)
        total = time.perf_counter() - start
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
            raise InputError(f"challengeR failed: {tail[0]}", path=src)
        seconds = pd.read_csv(Path(tmp) / "out" / "seconds.csv")
    return float(seconds["seconds"].sum()), total


def run_bench(
    n_entries: int,
    n_cases: int,
    n_tasks: int,
    n_boot: int,
    seed: int,
    jobs: int,
    challenger_src: str | None,
    challenger_draws: int | None = None,
) -> list[str]:
    """Run the benchmark; the lines it prints."""
    frame = bench_frame(n_entries, n_cases, n_tasks, seed)
    higher = {t: True for t in frame["task"].unique()}
    start = time.perf_counter()
    rank_frame(frame, higher, Request(n_boot=n_boot, seed=seed, jobs=jobs))
    ours = time.perf_counter() - start
    size = f"{n_entries} entries x {n_cases} cases x {n_tasks} tasks, {n_boot} bootstrap draws"
    lines = [
        f"data: {size} (seed {seed})",
        f"e2net-eval rank engine, 4 methods + significance + bootstrap + consensus, "
        f"--jobs {jobs}: {ours:.2f} s",
    ]
    if challenger_src is None:
        lines.append("challengeR: not timed (no --challenger-src / E2NET_CHALLENGER_SRC)")
        return lines
    r_draws = challenger_draws or n_boot
    boot, total = time_challenger(Path(challenger_src), frame, r_draws, seed)
    lines.append(
        f"challengeR 1.0.5 bootstrap of the same 4 methods, {r_draws} draws: {boot:.2f} s "
        f"(whole Rscript run with the full-data rankings: {total:.2f} s)"
    )
    if r_draws != n_boot:
        boot = boot * n_boot / r_draws
        lines.append(
            f"challengeR at {n_boot} draws, from its time per draw (each draw is the same "
            f"work): {boot:.2f} s (extrapolated, not measured)"
        )
    lines.append(f"ratio challengeR / e2net-eval (bootstrap): {boot / ours:.1f}x")
    return lines
