"""The report over replicates: spread and wins statistics, what a one-replicate report
shows (no replicate tables; the split beside the paper's), and which replicates it reads."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sstats

from e2net_eval.report import stats
from e2net_eval.report.build import build_tables, run_lines
from e2net_eval.report.results import load_run
from e2net_eval.util.jsonio import dump_json, load_json
from tests.helpers.report_fakes import fake_run


def test_spread_is_mean_sd_and_range():
    sp = stats.spread([0.70, None, 0.60, float("nan"), 0.65])
    assert sp.n == 3 and sp.mean == pytest.approx(0.65)
    assert sp.sd == pytest.approx(np.std([0.70, 0.60, 0.65], ddof=1))
    assert (sp.low, sp.high) == (0.60, 0.70)
    assert stats.spread([0.5]).sd is None  # no spread from one replicate
    assert stats.spread([]).mean is None


def test_wins_count_ties_half_and_sign_test_leaves_them_out():
    w = stats.wins([1, 2, 3, 4, 5], [2, 2, 4, 5, 4])  # B: win, tie, win, win, loss
    assert (w.n, w.wins, w.ties) == (5, 3, 1)
    assert w.fraction == pytest.approx(3.5 / 5)
    assert w.diff.mean == pytest.approx(np.mean([1, 0, 1, 1, -1]))
    assert w.sign_p == pytest.approx(sstats.binomtest(3, 4, 0.5).pvalue)
    assert stats.wins([1, 1], [1, 1]).sign_p is None
    assert stats.wins([1, None], [2, 3]).n == 1  # a replicate without the figure is left out


def test_one_replicate_report_has_no_replicate_tables_and_states_the_split(tmp_path):
    fake_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.n_replicates == 1 and run.replicated("lits_val") == []
    keys = [t.key for t in build_tables(run)]
    assert not [k for k in keys if k.startswith(("replicates_", "wins_"))]
    lines = "\n".join(run_lines(run))
    assert (
        "trains on 3 and validates on 5 phantom LiTS cases; the paper trained on 111 and "
        "validated on 20 of the 131 LiTS cases" in lines
    )
    assert "Encoder initialisation: random" in lines and "Replicates" not in lines


def test_replicates_read_are_those_the_run_lists(tmp_path):
    root = tmp_path / "run"
    fake_run(root, configs=("stage1", "baseline"))
    fake_run(root / "replicates" / "1", configs=("stage1", "baseline"))
    fake_run(root / "replicates" / "2", configs=("stage1", "baseline"))  # not listed below
    info = load_json(root / "ablation.json")
    info["replicates"] = [
        {"index": 0, "split_seed": 7, "seed": 7},
        {"index": 1, "split_seed": 8, "seed": 8},
    ]
    dump_json(root / "ablation.json", info)
    run = load_run(root)
    assert [(r.index, r.split_seed, r.seed) for r in run.replicates] == [(0, 7, 7), (1, 8, 8)]
    groups = run.replicated("lits_val")
    assert [g.name for g in groups] == ["stage1", "baseline"]
    assert sorted(groups[1].by_replicate) == [0, 1]
    keys = [t.key for t in build_tables(run)]
    assert {"replicates_lits_val", "wins_lits_val", "replicates_ircadb", "wins_ircadb"} <= set(keys)
    assert "split and training seed" in " ".join(
        next(t for t in build_tables(run) if t.key == "replicates_lits_val").notes
    )
