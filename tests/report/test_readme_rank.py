"""README "Rank your models": its commands, run exactly as written (through bash, with
the installed `e2net-eval` entry point using this checkout): the committed phantom
ablation, and the two evaluations the "Compare your model" commands write."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.report.test_readme_compare import make_data
from tests.report.test_readme_compare import readme_commands as compare_commands

REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Rank your models", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _run(commands: list[str], cwd: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    assert shutil.which("e2net-eval", path=env["PATH"]), "install the package (README)"
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, (command, done.stderr)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_readme_rank_section_runs_as_written(tmp_path):
    commands = readme_commands()
    assert [c.split()[:2] for c in commands] == [["e2net-eval", "rank"]] * 2
    shutil.copytree(
        REPO / "leaderboards" / "phantom-baseline", tmp_path / "leaderboards" / "phantom-baseline"
    )
    make_data(tmp_path)
    _run([c for c in compare_commands() if " evaluate " in f" {c} "], tmp_path)
    _run(commands, tmp_path)
    rows = _rows(tmp_path / "ranking" / "rankings.csv")
    assert {r["entry"] for r in rows} == {
        "stage1",
        "baseline",
        "edge",
        "dist",
        "edge_dcff",
        "dist_dcff",
    }
    assert {r["task"] for r in rows} == {"liver/dice", "tumour/dice"}
    mine = _rows(tmp_path / "ranking-mine" / "consensus.csv")
    assert {r["entry"] for r in mine} == {"nnunet", "monai"}
    for name in ("bootstrap.csv", "ranking.html"):
        assert (tmp_path / "ranking-mine" / name).is_file()
