"""`e2net-eval rank`: evaluate outputs in, rankings.csv / bootstrap.csv / consensus.csv,
tables and figures out; bad input is one line, exit 2, and nothing written."""

from __future__ import annotations

import csv
import io
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec
from e2net_eval.metrics import evaluate
from e2net_eval.report import ranking as R
from e2net_eval.report.ranking_report import cell, long_frame, parse_tasks

N = 8
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A label-only phantom LiTS set and three prediction sets, evaluated."""
    tmp = tmp_path_factory.mktemp("rank")
    write_phantom(tmp / "lits", PhantomSpec("lits", N, seed=21, size=32, slices=(8, 10)))
    labels = tmp / "labels"
    labels.mkdir()
    for i in range(N):
        shutil.copy(tmp / "lits" / f"segmentation-{i}.nii", labels)
    for k, name in enumerate("abc"):
        pred = tmp / f"pred_{name}"
        pred.mkdir()
        for i in range(N):
            img = nib.load(str(labels / f"segmentation-{i}.nii"), mmap=False)
            data = np.roll(np.asarray(img.dataobj).astype(np.uint8), (i + k) % 3, axis=k % 3)
            nib.save(nib.Nifti1Image(data, img.affine), str(pred / f"{i}.nii.gz"))
        evaluate(pred, labels, tmp / f"eval_{name}", protocol="p", progress=False)
    return tmp


def _csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _one_line_error(code, err, *needles):
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _entries(scored, names="abc"):
    return [f"{n}={scored / f'eval_{n}'}" for n in names]


def test_rank_writes_every_output_and_agrees_with_the_engine(scored, tmp_path, run_cli):
    out = tmp_path / "r"
    code, stdout, err = run_cli(
        "rank", *_entries(scored), "-o", out, "--bootstrap", "50", "--seed", "3"
    )
    assert code == 0, err
    for name in ("rankings.csv", "bootstrap.csv", "consensus.csv", "significance.csv"):
        assert (out / name).is_file()
    for name in ("ranking.md", "ranking.tex", "ranking.html"):
        assert (out / name).stat().st_size > 0
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) == 7 and all(p.read_bytes().startswith(PNG) for p in pngs)
    html = (out / "ranking.html").read_text()
    assert html.count("data:image/png;base64,") == 7
    rows = _csv(out / "rankings.csv")
    assert list(rows[0]) == ["task", "method", "entry", "value", "rank"]
    assert {r["task"] for r in rows} == {"liver/dice", "tumour/dice", "liver/hd95", "tumour/hd95"}
    assert {r["method"] for r in rows} == set(R.METHODS)
    # the tumour Dice means are the summaries' own dice_per_case (same cases, same values)
    for name in "abc":
        summary = json.loads((scored / f"eval_{name}" / "summary.json").read_text())
        row = next(
            r for r in rows if (r["task"], r["method"], r["entry"]) == ("tumour/dice", "mean", name)
        )
        assert float(row["value"]) == pytest.approx(summary["regions"]["tumour"]["dice_per_case"])
    boot = _csv(out / "bootstrap.csv")
    assert list(boot[0])[:6] == ["task", "method", "entry", "rank_median", "rank_q025", "rank_q975"]
    assert len(boot) == 4 * len(R.METHODS) * 3
    assert {r["method"] for r in _csv(out / "consensus.csv")} == set(R.METHODS)
    # hd95: lower is better, the entry with the smallest mean ranks first
    hd = [r for r in rows if r["task"] == "liver/hd95" and r["method"] == "mean"]
    best = min(hd, key=lambda r: float(r["value"]))
    assert best["rank"] == "1"


def test_rank_is_deterministic_and_jobs_do_not_change_it(scored, tmp_path, run_cli):
    outs = []
    for k, jobs in enumerate(("1", "2")):
        out = tmp_path / f"r{k}"
        args = ["--bootstrap", "30", "--seed", "5", "--jobs", jobs, "--no-figures"]
        code, _, err = run_cli("rank", *_entries(scored), "-o", out, *args)
        assert code == 0, err
        outs.append(out)
    for name in ("rankings.csv", "bootstrap.csv", "consensus.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_metric_option_and_directions(scored, tmp_path, run_cli):
    out = tmp_path / "r"
    code, _, err = run_cli(
        "rank", *_entries(scored, "ab"), "-o", out, "--metric", "tumour/nsd",
        "--metric", "voe", "--bootstrap", "5", "--no-figures",
    )  # fmt: skip
    assert code == 0, err
    assert {r["task"] for r in _csv(out / "rankings.csv")} == {
        "tumour/nsd",
        "liver/voe",
        "tumour/voe",
    }


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--metric", "dise"], ["unknown per-case metric 'dise'"]),
        (["--metric", "lung/dice"], ["unknown region 'lung'"]),
        (["--missing", "best"], ["--missing"]),
        (["--bootstrap", "0"], ["--bootstrap"]),
        (["--alpha", "1.5"], ["--alpha"]),
    ],
)
def test_bad_options_are_one_line_exit_2_and_write_nothing(
    scored, tmp_path, run_cli, args, needles
):
    out = tmp_path / "r"
    code, _, err = run_cli("rank", *_entries(scored, "ab"), "-o", out, *args)
    _one_line_error(code, err, *needles)
    assert not out.exists()


def test_a_single_entry_is_bad_input(scored, tmp_path, run_cli):
    code, _, err = run_cli("rank", *_entries(scored, "a"), "-o", tmp_path / "r")
    _one_line_error(code, err, "at least two entries")


def test_entries_on_different_reference_sets(scored, tmp_path, run_cli):
    labels, pred = tmp_path / "labels_short", tmp_path / "pred_short"
    shutil.copytree(scored / "labels", labels)
    shutil.copytree(scored / "pred_b", pred)
    (labels / "segmentation-7.nii").unlink()  # one case fewer: another reference set
    (pred / "7.nii.gz").unlink()
    other = tmp_path / "eval_short"
    evaluate(pred, labels, other, protocol="p", progress=False)
    a = f"a={scored / 'eval_a'}"
    code, _, err = run_cli("rank", a, f"s={other}", "-o", tmp_path / "r")
    _one_line_error(code, err, "reference set", "--allow-mixed")
    code, _, err = run_cli(
        "rank", a, f"s={other}", "-o", tmp_path / "m", "--allow-mixed", "--bootstrap", "5",
        "--no-figures",
    )  # fmt: skip
    assert code == 0, err
    assert "MIXED" in (tmp_path / "m" / "ranking.md").read_text()


def test_a_task_with_every_value_undefined(scored):
    from e2net_eval.scores import read_evaluation

    entries = [(n, read_evaluation(scored / f"eval_{n}")) for n in "ab"]
    for _, ev in entries:
        ev.per_case.loc[ev.per_case["region"] == "tumour", "hd95"] = np.nan
    frame, higher = long_frame(entries, parse_tasks(["tumour/hd95"]))
    with pytest.raises(Exception, match="every value is undefined"):
        R.prepare(frame, higher, R.Options())


def test_cells_are_escaped_in_one_place():
    assert cell("a|b") == "a\\|b"
    assert cell("=cmd()", "csv") == "'=cmd()"
    assert cell("-1", "csv") == "-1"
    assert cell(float("nan")) == ""


def test_bench_rank(tmp_path, run_cli, monkeypatch):
    monkeypatch.delenv("E2NET_CHALLENGER_SRC", raising=False)
    args = ["bench", "rank", "--entries", "3", "--cases", "12", "--tasks", "2", "--bootstrap", "20"]
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert "3 entries x 12 cases x 2 tasks, 20 bootstrap draws" in out
    assert "challengeR: not timed" in out
    code, out, err = run_cli(*args, "--challenger-src", tmp_path)  # no challengeR there
    _one_line_error(code, err)


def test_method_option(scored, tmp_path, run_cli):
    out = tmp_path / "r"
    code, _, err = run_cli(
        "rank", *_entries(scored, "ab"), "-o", out, "--method", "median", "--method",
        "quantile_0.25", "--metric", "liver/dice", "--bootstrap", "5",
    )  # fmt: skip
    assert code == 0, err
    rows = _csv(out / "rankings.csv")
    assert [r["method"] for r in rows] == ["median"] * 2 + ["quantile_0.25"] * 2
    assert {r["method"] for r in _csv(out / "bootstrap.csv")} == {"median", "quantile_0.25"}
    code, _, err = run_cli(
        "rank", *_entries(scored, "ab"), "-o", tmp_path / "x", "--method", "mode"
    )
    _one_line_error(code, err, "unknown ranking method 'mode'")
