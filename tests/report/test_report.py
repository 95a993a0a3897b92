"""`e2net-eval report`: table content, measured vs published, provenance, formats, figures."""

from __future__ import annotations

import base64
import csv
import io
import re

import nibabel as nib
import numpy as np
import pytest
from scipy import stats as sstats

from e2net_eval.report import figures, stats
from e2net_eval.report.build import build_tables, write_report
from e2net_eval.report.paper_tables import table3
from e2net_eval.report.results import load_run
from e2net_eval.report.tables import MEASURED, PUBLISHED
from e2net_eval.scores import per_case_frame
from tests.helpers.report_fakes import cell_of, column, fake_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_dir(tmp_path):
    root = tmp_path / "run"
    fake_run(root)
    return root


def test_table3_measured_and_published_apart(run_dir):
    table = table3(load_run(run_dir))
    measured, published = table.section(MEASURED), table.section(PUBLISHED)
    assert [r.label for r in measured][-1] == "+ dist + DCFF"
    assert [r.cells[0].text for r in published] == ["95.3", "96.1", "96.6", "97.1", "97.5", "97.8"]
    final = measured[-1]
    liver = [0.90 + 0.05 + 0.002 * i for i in range(5)]
    col = column(3, "regions.liver.dice_per_case")
    got = cell_of(table, final, col["key"])
    assert got.value == pytest.approx(col["scale"] * np.mean(liver))
    assert got.low <= got.value <= got.high
    tumour = column(3, "regions.tumour.dice_per_case")["key"]
    assert cell_of(table, measured[0], tumour).text == "-"  # 1st stage has no tumour output
    for row in measured:
        assert row.meta["protocol"] == "leak-free" and row.meta["profile"] == "small"
        assert row.meta["seed"] == 7 and "LiTS validation, 5 cases" in row.meta["split"]


def test_csv_carries_provenance(run_dir, tmp_path):
    write_report(run_dir, tmp_path / "rep")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "rep" / "tables.csv").read_text())))
    measured = [r for r in rows if r["section"] == MEASURED]
    published = [r for r in rows if r["section"] == PUBLISHED]
    assert measured and published
    assert all(r["protocol"] and r["profile"] and r["seed"] and r["split"] for r in measured)
    assert all(not r["protocol"] for r in published)
    col = column(2, "regions.tumour.dice_per_case")
    cell = next(
        r
        for r in measured
        if (r["table"], r["config"], r["column"]) == ("table2", "dist_dcff", col["key"])
    )
    tumour = [0.50 + 0.10 + 0.03 * i + 0.01 for i in range(5)]
    assert float(cell["value"]) == pytest.approx(col["scale"] * np.mean(tumour))
    assert cell["dataset"] == "ircadb" and cell["n"] == "5"
    e2 = next(r for r in published if r["table"] == "table2" and r["row"] == "E2Net (Ours)")
    assert e2["text"] in ("98.9", "95.7")


def _strip_escaped(tex: str) -> str:
    return re.sub(r"\\[{}&%$#_]", "", tex)


def test_latex_is_balanced(run_dir, tmp_path):
    write_report(run_dir, tmp_path / "rep")
    tex = (tmp_path / "rep" / "report.tex").read_text()
    plain = _strip_escaped(tex)
    depth = 0
    for ch in plain:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", plain):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack.pop() == env
    assert not stack
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\usepackage{booktabs}" in tex
    for block in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", plain, re.S):
        ncol = len(block[0])
        for line in block[1].splitlines():
            if line.endswith(r"\\") and "multicolumn" not in line:
                assert line.count("&") == ncol - 1, line


def test_html_is_self_contained_with_images(run_dir, tmp_path):
    write_report(run_dir, tmp_path / "rep")
    html = (tmp_path / "rep" / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 4
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert "http://" not in html and "https://" not in html
    assert 'class="measured"' in html and 'class="published"' in html
    md = (tmp_path / "rep" / "report.md").read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (tmp_path / "rep" / link).read_bytes().startswith(PNG_MAGIC)


def test_bootstrap_interval():
    values = [0.6, 0.7, 0.8, 0.9, 0.65, 0.75]
    a, b = stats.bootstrap(values), stats.bootstrap(values)
    assert a == b  # seeded
    assert a.low < np.mean(values) < a.high and a.n == 6
    assert stats.bootstrap([0.5, 0.5, 0.5]) == stats.Interval(0.5, 0.5, 0.5, 3)
    assert stats.bootstrap([None, 0.4]).n == 1
    assert stats.bootstrap([]).value is None


def test_paired_test_matches_scipy():
    a = [0.60, 0.70, 0.65, 0.80, 0.55, 0.72, 0.68]
    b = [0.62, 0.74, 0.66, 0.79, 0.60, 0.75, 0.70]
    t = stats.paired_test("x", "y", a, b)
    diff = np.subtract(b, a)
    assert t.n == 7 and t.mean_diff == pytest.approx(diff.mean())
    assert t.wilcoxon_p == pytest.approx(sstats.wilcoxon(diff).pvalue)
    assert t.low <= t.mean_diff <= t.high
    assert stats.paired_test("x", "y", a, a).wilcoxon_p is None
    assert stats.paired_test("x", "y", [0.5, None], [0.6, 0.7]).n == 1


def test_paired_tables_present(run_dir):
    keys = [t.key for t in build_tables(load_run(run_dir))]
    assert keys == ["table1", "table2", "table3", "paired_lits_val", "paired_ircadb"]
    paired = build_tables(load_run(run_dir))[3]
    row = next(
        r
        for r in paired.rows
        if (r.meta["a"], r.meta["b"], r.meta["region"], r.meta["dataset"])
        == ("dist", "dist_dcff", "tumour", "lits_val")
    )
    scale = column(3, "regions.tumour.dice_per_case")["scale"]
    # two configs apart: 2 x 0.02 Dice per case, in the table's scale (percentage points)
    assert cell_of(paired, row, "diff").value == pytest.approx(2 * 0.02 * scale)
    assert any("little power" in n for n in paired.notes)


def test_slice_panel_and_case_slices(run_dir, tmp_path, monkeypatch):
    shape = (32, 32, 6)
    label = np.zeros(shape, np.uint8)
    label[8:24, 8:24, 1:5] = 1
    label[12:16, 12:16, 2:4] = 2
    image = np.where(label > 0, 100.0, -50.0).astype(np.float32)
    pred = np.roll(label, 1, axis=0)
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    png = figures.slice_panel(image, label, pred, affine, "test")
    assert png.startswith(PNG_MAGIC)
    with pytest.raises(ValueError):
        figures.slice_panel(image, label, pred[:-1], affine, "bad")

    class FakeCase:
        def __init__(self):
            self.image, self.label, self.affine = image, label, affine

    class FakeDataset:
        def load(self, case_id):
            return FakeCase()

    monkeypatch.setattr(figures, "open_dataset", lambda root: FakeDataset())
    import json

    info = json.loads((run_dir / "ablation.json").read_text())
    data = tmp_path / "data"  # a data root is an input: the report may not be written in it
    info["data"] = {"lits": str(data), "ircadb": str(data)}
    (run_dir / "ablation.json").write_text(json.dumps(info))
    for case in range(5):
        out = run_dir / "pred" / "lits_val" / "dist_dcff" / f"{case}.nii.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(pred, affine), str(out))
    write_report(run_dir, tmp_path / "rep")
    slices = sorted(p.name for p in (tmp_path / "rep" / "figures").glob("slice_*"))
    assert slices == ["slice_lits_val_best.png", "slice_lits_val_worst.png"]


def test_report_command(run_dir, tmp_path, run_cli):
    code, out, err = run_cli("report", run_dir, "-o", tmp_path / "r")
    assert code == 0, err
    assert (tmp_path / "r" / "report.html").is_file() and "html" in out
    code, _, err = run_cli("report", tmp_path / "nope")
    assert code == 2 and "nope" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("report", tmp_path / "empty")
    assert code == 2 and "ablation.json" in err


def test_best_worst_cases():
    def row(case, tumour, liver, ref):
        return {
            "case": case,
            "liver": {"dice": liver},
            "tumour": {"dice": tumour, "ref_voxels": ref},
        }

    def frame(*rows):
        return per_case_frame({"regions": {"liver": {}, "tumour": {}}, "metric_per_case": rows})

    rows = [
        row("a", 0.0, 0.80, 10),
        row("b", 1.0, 0.99, 0),  # no reference tumour: not a tumour candidate
        row("c", 0.0, 0.95, 10),
        row("d", 0.6, 0.90, 10),
    ]
    assert figures.best_worst(frame(*rows)) == ("d", "a")
    assert figures.best_worst(frame(*rows[:3])) == ("c", "a")  # tie on tumour, liver decides
    only = frame(row("x", 0.5, 0.9, 0))
    assert figures.best_worst(only) == ("x", "x")  # no tumour anywhere: liver Dice
