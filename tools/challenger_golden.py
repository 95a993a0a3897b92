"""Run challengeR 1.0.5 (through tools/challenger_agreement.R) on the recorded inputs in
tests/report/challenger_golden/ and write its outputs there as the golden files that
tests/report/test_ranking_golden.py checks in the default run: per case, rankings.csv and
significance.csv as challengeR wrote them, bootstrap.csv and tau.csv (summaries of its
bootstrap draws) and run.json (how they were made).

Usage: python tools/challenger_golden.py CHALLENGER_SRC [OUT_DIR]
E2NET_CHALLENGER_COMMIT names the commit when CHALLENGER_SRC is an export, not a checkout.
(OUT_DIR defaults to tests/report/challenger_golden; tools/challenger-agreement.sh
--regenerate calls this). Needs Rscript with challengeR's imports (docs/reports.md).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import challenger_checks as C  # noqa: E402

SCRIPT = REPO / "tools" / "challenger_agreement.R"


def run_challenger(src: Path, data: Path, out: Path, na_treat: str, n_boot: int) -> None:
    """challengeR on `data` into `out` (raises with R's message on failure)."""
    args = [str(src), str(data), str(out), na_treat, str(n_boot), str(C.SEED)]
    done = subprocess.run(["Rscript", str(SCRIPT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: challengeR failed on {data}: {done.stderr[-2000:]}")


def provenance(src: Path, case: str) -> dict:
    """Which challengeR, R, command and date made the files of `case`."""
    data, na_treat, _, n_boot = C.CASES[case]
    commit = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    r = subprocess.run(["Rscript", "--version"], capture_output=True, text=True)
    return {
        "case": case,
        "input": data,
        "na_treat": na_treat,
        "bootstrap_draws": n_boot,
        "seed": C.SEED,
        "rng": "set.seed(seed, kind = \"L'Ecuyer-CMRG\") before each method's bootstrap",
        "challenger_commit": commit or os.environ.get("E2NET_CHALLENGER_COMMIT", "unknown"),
        "r_version": (r.stdout or r.stderr).strip().splitlines()[0],
        "command": f"python tools/challenger_golden.py CHALLENGER_SRC (Rscript {SCRIPT.name} "
        f"SRC {data} OUT {na_treat} {n_boot} {C.SEED})",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_case(src: Path, case: str, raw: Path, dest: Path) -> None:
    """The golden files of `case` in `dest` from challengeR's raw output in `raw`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("rankings.csv", "significance.csv"):
        shutil.copyfile(raw / name, dest / name)
    boots, taus = C.summarise_challenger(raw)
    boots.to_csv(dest / "bootstrap.csv", index=False, float_format="%.17g")
    taus.to_csv(dest / "tau.csv", index=False, float_format="%.17g")
    C.write_run_json(dest, provenance(src, case))


def main(argv: list[str]) -> None:
    src = Path(argv[0]).resolve()
    out = Path(argv[1]) if len(argv) > 1 else C.GOLDEN
    with tempfile.TemporaryDirectory(prefix="challenger-golden-") as tmp:
        for case, (data, na_treat, _, n_boot) in C.CASES.items():
            raw = Path(tmp) / case
            run_challenger(src, C.GOLDEN / data, raw, na_treat, n_boot)
            write_case(src, case, raw, out / case)
            print(f"{case}: written to {out / case}")


if __name__ == "__main__":
    main(sys.argv[1:])
