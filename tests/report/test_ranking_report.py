"""The ablation report's ranking section: the six configurations ranked by the engine of
`e2net-eval rank`, one table per evaluation set."""

from __future__ import annotations

import csv
import io

import pytest

from e2net_eval.report.build import write_report
from e2net_eval.report.ranking_tables import ranking_tables
from e2net_eval.report.results import load_run
from tests.helpers.report_fakes import fake_run

CONFIGS = ("stage1", "baseline", "edge", "dist", "edge_dcff", "dist_dcff")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rankrun") / "run"
    fake_run(root, n=6)  # config k: tumour Dice +2 points per step on every case
    return root


def test_ranking_section_ranks_the_configurations(run_dir):
    tables = ranking_tables(load_run(run_dir))
    assert [t.key for t in tables] == ["ranking_lits_val", "ranking_ircadb"]
    table = tables[0]
    keys = [k for k, _ in table.columns]
    assert keys[0] == "consensus" and "tumour/dice:mean" in keys and "tumour/dice:ttr" in keys
    assert [r.meta["config"] for r in table.rows] == list(CONFIGS)
    col = keys.index("tumour/dice:mean")
    # better on every case: the last configuration first, the first last, in every method
    assert [r.cells[col].value for r in table.rows] == [6, 5, 4, 3, 2, 1]
    for method in ("rta", "ttr"):
        c = keys.index(f"tumour/dice:{method}")
        assert [r.cells[c].value for r in table.rows] == [6, 5, 4, 3, 2, 1]
    assert [r.cells[0].value for r in table.rows] == [6, 5, 4, 3, 2, 1]
    top = table.rows[-1].cells[col]
    assert top.low == 1 and top.high == 1  # never beaten in any bootstrap draw


def test_the_report_carries_the_ranking(run_dir, tmp_path):
    out = tmp_path / "report"
    write_report(run_dir, out)
    md = (out / "report.md").read_text()
    assert "Ranking of the configurations" in md
    rows = list(csv.DictReader(io.StringIO((out / "tables.csv").read_text())))
    assert {r["table"] for r in rows} >= {"ranking_lits_val", "ranking_ircadb"}


def test_ranking_over_replicates(tmp_path):
    from e2net_eval.util.jsonio import dump_json, load_json

    root = tmp_path / "run"
    fake_run(root, configs=("stage1", "baseline", "edge"))  # edge best, stage1 worst
    fake_run(root / "replicates" / "1", configs=("edge", "baseline", "stage1"))  # reversed
    info = load_json(root / "ablation.json")
    info["replicates"] = [
        {"index": 0, "split_seed": 7, "seed": 7},
        {"index": 1, "split_seed": 8, "seed": 8},
    ]
    dump_json(root / "ablation.json", info)
    tables = {t.key: t for t in ranking_tables(load_run(root))}
    table = tables["ranking_replicates_lits_val"]
    keys = [k for k, _ in table.columns]
    assert keys[:3] == ["liver/dice:consensus", "liver/dice:r0", "liver/dice:r1"]
    by = {r.meta["config"]: r.cells for r in table.rows}
    t = keys.index("tumour/dice:consensus")
    assert [by[c][t + 1].value for c in ("stage1", "baseline", "edge")] == [3, 2, 1]  # r0
    assert [by[c][t + 2].value for c in ("stage1", "baseline", "edge")] == [1, 2, 3]  # r1
    # consensus: mean ranks 2, 2, 2 -> all tied first; range over the replicates
    assert [by[c][t].value for c in ("stage1", "baseline", "edge")] == [1, 1, 1]
    assert (by["stage1"][t].low, by["stage1"][t].high) == (1, 3)
    assert (by["baseline"][t].low, by["baseline"][t].high) == (2, 2)
    assert "ranking_lits_val" in tables
