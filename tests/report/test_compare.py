"""`e2net-eval compare`: evaluations of anyone's predictions side by side, through the same
table/figure engine and writer as `report`."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil

import nibabel as nib
import numpy as np
import pytest
from scipy import stats as sstats

from e2net_eval.data import write_phantom
from e2net_eval.data.phantom import PhantomSpec
from e2net_eval.metrics import evaluate
from e2net_eval.metrics.registry import Metric, registered
from e2net_eval.report import stats
from tests.helpers.report_fakes import column, fake_run

PNG = b"\x89PNG\r\n\x1a\n"
N = 6
PROTOCOL = "phantom, 6 cases"


def _perturb(label: np.ndarray, name: str, i: int) -> np.ndarray:
    """Deterministic, case-dependent damage: each prediction set is worse in its own way."""
    if name == "a":
        return np.roll(label, 1 + i % 2, axis=0)
    if name == "b":
        return np.roll(label, i % 3, axis=1)
    out = label.copy()
    if i % 2 == 0:
        out[out == 2] = 1  # misses the tumour of every other case
    return np.roll(out, 1, axis=2)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Label-only LiTS folder, three prediction sets in three layouts, their evaluations."""
    tmp = tmp_path_factory.mktemp("compare")
    write_phantom(tmp / "lits", PhantomSpec("lits", N, seed=21, size=32, slices=(8, 10)))
    labels = tmp / "labels"
    labels.mkdir()
    for i in range(N):
        shutil.copy(tmp / "lits" / f"segmentation-{i}.nii", labels)
    for name in ("a", "b", "c"):
        pred = tmp / f"pred_{name}"
        for i in range(N):
            img = nib.load(str(labels / f"segmentation-{i}.nii"), mmap=False)
            data = _perturb(np.asarray(img.dataobj).astype(np.uint8), name, i)
            if name == "b":  # MONAI SaveImage layout, float32 voxels as MONAI writes them
                path = pred / f"volume-{i}" / f"volume-{i}_seg.nii.gz"
                data = data.astype(np.float32)
            else:
                path = pred / f"{i}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data, img.affine), str(path))
        evaluate(pred, labels, tmp / f"eval_{name}", protocol=PROTOCOL, progress=False)
    return tmp


def _csv(path):
    """tables.csv rows with every cell as it was before its formula guard."""
    from e2net_eval.util.textsafe import csv_uncell

    rows = csv.DictReader(io.StringIO(path.read_text()))
    return [{k: csv_uncell(v) for k, v in r.items()} for r in rows]


def _dice(folder, region):
    summary = json.loads((folder / "summary.json").read_text())
    return {r["case"]: r[region]["dice"] for r in summary["metric_per_case"]}


def _one_line_error(code, err, *needles):
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_two_entries_four_formats_paired_tests_and_figures(scored, tmp_path, run_cli):
    out = tmp_path / "cmp"
    code, stdout, err = run_cli(
        "compare", f"a={scored / 'eval_a'}", f"b={scored / 'eval_b'}", "-o", out, "--baseline", "a"
    )
    assert code == 0, err
    for name in ("report.md", "report.tex", "tables.csv", "report.html"):
        assert (out / name).is_file() and name in stdout
    rows = _csv(out / "tables.csv")
    # Table 1 style by default: measured rows per entry beside the paper's rows
    t1 = [r for r in rows if r["table"] == "table1"]
    assert {r["section"] for r in t1} == {"measured", "published"}
    col = column(1, "regions.tumour.dice_per_case")
    for name in ("a", "b"):
        summary = json.loads((scored / f"eval_{name}" / "summary.json").read_text())
        cell = next(r for r in t1 if r["config"] == name and r["column"] == col["key"])
        value = summary["regions"]["tumour"]["dice_per_case"]
        assert float(cell["value"]) == pytest.approx(col["scale"] * value)
        assert float(cell["ci_low"]) <= float(cell["value"]) <= float(cell["ci_high"])
        assert cell["protocol"] == PROTOCOL and cell["n"] == str(N)
    assert any(r["row"] == "a (baseline)" for r in t1)
    # paired: B - A per case with scipy's Wilcoxon p, Holm = raw with one test per region
    for region in ("liver", "tumour"):
        da, db = _dice(scored / "eval_a", region), _dice(scored / "eval_b", region)
        diff = np.array([db[c] - da[c] for c in da])
        cells = {
            r["column"]: r
            for r in rows
            if r["table"] == "paired" and r["row"] == f"b vs a (baseline), {region}"
        }
        scale = column(1, f"regions.{region}.dice_per_case")["scale"]
        assert float(cells["diff"]["value"]) == pytest.approx(scale * diff.mean())
        assert float(cells["p"]["value"]) == pytest.approx(sstats.wilcoxon(diff).pvalue)
        assert cells["p_holm"]["value"] == cells["p"]["value"] and cells["n"]["value"] == "6.0"
    # every metric of the registry, and the figures
    assert {"metrics_liver", "metrics_tumour", "metrics_lesions"} <= {r["table"] for r in rows}
    assert {"peer_surface", "peer_lesion"} <= {r["table"] for r in rows}
    assert any(r["column"] == "regions.tumour.hd95" for r in rows if r["table"] == "peer_surface")
    assert any(r["column"] == "regions.tumour.assd" for r in rows)
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(PNG) for i in images)
    assert "http://" not in html and "https://" not in html
    md = (out / "report.md").read_text()
    assert "figures/dice.png" in md and (out / "figures" / "dice.png").read_bytes().startswith(PNG)
    tex = (out / "report.tex").read_text()
    n_tables = len({r["table"] for r in rows})
    assert n_tables == 7  # table1, paired, three of the LiTS set, two of the further metrics
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == n_tables
    assert r"\documentclass{article}" in tex and "Holm p" in tex


def test_all_pairs_with_holm(scored, tmp_path, run_cli):
    out = tmp_path / "cmp"
    specs = [f"{n}={scored / f'eval_{n}'}" for n in ("a", "b", "c")]
    code, _, err = run_cli("compare", *specs, "-o", out, "--table", "3")
    assert code == 0, err
    rows = [r for r in _csv(out / "tables.csv") if r["table"] == "paired"]
    checked = 0
    for region in ("liver", "tumour"):
        dice = {n: _dice(scored / f"eval_{n}", region) for n in "abc"}
        pairs = [("a", "b"), ("a", "c"), ("b", "c")]
        raw = []
        for x, y in pairs:
            diff = np.array([dice[y][c] - dice[x][c] for c in dice[x]])
            raw.append(sstats.wilcoxon(diff).pvalue if np.any(diff) else None)
        # Holm by hand: sort, multiply by (m - rank), running maximum, cap at 1
        order = sorted(range(3), key=lambda i: 1.0 if raw[i] is None else raw[i])
        expected, running = {}, 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (3 - rank) * (1.0 if raw[i] is None else raw[i])))
            expected[pairs[i]] = running
        for x, y in pairs:
            got = next(
                r for r in rows if r["row"] == f"{y} vs {x}, {region}" and r["column"] == "p_holm"
            )
            if raw[pairs.index((x, y))] is not None:
                assert float(got["value"]) == pytest.approx(expected[(x, y)])
                checked += 1
    assert checked >= 4
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    t3 = [r for r in _csv(out / "tables.csv") if r["table"] == "table3"]
    assert {r["row"] for r in t3 if r["section"] == "published"} >= {"+ dist + DCFF"}


def test_summary_json_alone_gives_the_same_tables(scored, tmp_path, run_cli):
    code, _, err = run_cli(
        "compare", f"a={scored / 'eval_a'}", f"b={scored / 'eval_b'}", "-o", tmp_path / "dirs"
    )
    assert code == 0, err
    code, _, err = run_cli(
        "compare",
        f"a={scored / 'eval_a' / 'summary.json'}",
        f"b={scored / 'eval_b' / 'summary.json'}",
        "-o",
        tmp_path / "files",
    )
    assert code == 0, err

    def table1(folder):
        return [
            (r["row"], r["column"], r["text"])
            for r in _csv(folder / "tables.csv")
            if r["table"] in ("table1", "paired")
        ]

    assert table1(tmp_path / "files") == table1(tmp_path / "dirs")


def _variant(scored, tmp_path, name, **kw):
    out = tmp_path / name
    evaluate(scored / "pred_b", kw.pop("ref", scored / "labels"), out, progress=False, **kw)
    return out


@pytest.mark.parametrize(
    "variant, needles",
    [
        (
            {"case_ids": ["0", "1", "2", "3", "4"], "protocol": PROTOCOL},
            ["reference set", "only in a: 5"],
        ),
        ({"protocol": "another split"}, ["protocol", "'another split'"]),
        ({"protocol": PROTOCOL, "connectivity": 1}, ["scoring options", "surface_connectivity"]),
        ({"protocol": PROTOCOL, "nsd_tolerance": 1.0}, ["scoring options", "nsd_tolerance_mm"]),
    ],
)
def test_refuses_mixed_entries_unless_allowed(scored, tmp_path, run_cli, variant, needles):
    other = _variant(scored, tmp_path, "other", **variant)
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", f"a={scored / 'eval_a'}", f"x={other}", "-o", out)
    _one_line_error(code, err, "entries differ in", "--allow-mixed", *needles)
    assert not out.exists()
    code, _, err = run_cli(
        "compare", f"a={scored / 'eval_a'}", f"x={other}", "-o", out, "--allow-mixed"
    )
    assert code == 0, err
    rows = _csv(out / "tables.csv")
    label = next(r["row"] for r in rows if r["table"] == "table1" and r["config"] == "x")
    assert label.startswith("x [") and label != "x"  # the row says what differs
    assert "MIXED" in (out / "report.md").read_text()
    n = {r["text"] for r in rows if r["table"] == "paired" and r["column"] == "n"}
    assert n == {str(len(variant.get("case_ids", range(N))))}  # the common cases only


def test_refuses_other_reference_labels_with_the_same_ids(scored, tmp_path, run_cli):
    labels = tmp_path / "labels"
    shutil.copytree(scored / "labels", labels)
    img = nib.load(str(labels / "segmentation-3.nii"), mmap=False)
    data = np.asarray(img.dataobj).copy()
    data[data == 2] = 1
    nib.save(nib.Nifti1Image(data, img.affine), str(labels / "segmentation-3.nii"))
    other = _variant(scored, tmp_path, "other", ref=labels, protocol=PROTOCOL)
    code, _, err = run_cli(
        "compare", f"a={scored / 'eval_a'}", f"x={other}", "-o", tmp_path / "cmp"
    )
    _one_line_error(code, err, "reference labels of case 3 differ", "tumour voxels")


def test_refuses_the_same_labels_with_another_voxel_size(scored, tmp_path, run_cli):
    """LiTS and Task03 copies of an IRCAD case differ only in their header spacing."""
    labels = tmp_path / "labels"
    shutil.copytree(scored / "labels", labels)
    img = nib.load(str(labels / "segmentation-2.nii"), mmap=False)
    affine = img.affine.copy()
    affine[:3, :3] *= 1.5
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine), str(labels / "segmentation-2.nii"))
    other = _variant(
        scored, tmp_path, "other", ref=labels, protocol=PROTOCOL, allow_affine_mismatch=True
    )
    code, _, err = run_cli(
        "compare", f"a={scored / 'eval_a'}", f"x={other}", "-o", tmp_path / "cmp"
    )
    _one_line_error(code, err, "voxel size of case 2 differs", "ml")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["a=A", "b=B", "--baseline", "z"], ["--baseline 'z'", "a, b"]),
        (["a=A", "a=B"], ["entry name 'a' given twice"]),
        (["a=A", "b=nope"], ["nope", "no summary.json"]),
        (["=A"], ["expected NAME=PATH"]),
        (["a=RUN"], ["ablation run directory"]),
    ],
)
def test_bad_arguments(scored, tmp_path, run_cli, args, needles):
    fake_run(tmp_path / "run")
    paths = {"A": scored / "eval_a", "B": scored / "eval_b", "RUN": tmp_path / "run"}
    argv = [re.sub(r"(?<==)(A|B|RUN)$", lambda m: str(paths[m.group(1)]), a) for a in args]
    code, _, err = run_cli("compare", *argv, "-o", tmp_path / "cmp")
    _one_line_error(code, err, *needles)
    assert not (tmp_path / "cmp").exists()


def test_a_registered_metric_appears_without_touching_compare(scored, tmp_path, run_cli):
    toy = Metric(
        "toy_volume_ratio",
        False,
        "",
        "toy",
        level="case",
        compute=lambda r: r.counts.pred / r.counts.ref if r.counts.ref else float("nan"),
    )
    with registered(toy):
        for n in ("a", "b"):
            evaluate(
                scored / f"pred_{n}",
                scored / "labels",
                tmp_path / n,
                protocol=PROTOCOL,
                progress=False,
            )
        code, _, err = run_cli(
            "compare", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", "-o", tmp_path / "c"
        )
        assert code == 0, err
    rows = _csv(tmp_path / "c" / "tables.csv")
    assert any(r["column"] == "regions.liver.toy_volume_ratio" for r in rows)
    assert "toy volume ratio ↓" in (tmp_path / "c" / "report.md").read_text()


def test_report_and_compare_share_one_engine(scored, tmp_path, monkeypatch):
    """Both commands fill measured cells through paper_tables.figure_cell, draw through
    figures.to_png and write through document.write_document's renderer."""
    from e2net_eval.report import figures, paper_tables
    from e2net_eval.report.build import write_report
    from e2net_eval.report.compare import write_comparison
    from e2net_eval.report.tables import Cell

    monkeypatch.setattr(paper_tables, "figure_cell", lambda *a, **k: Cell(12345.0, decimals=0))
    monkeypatch.setattr(figures, "to_png", lambda fig: PNG + b"engine")
    fake_run(tmp_path / "run")
    write_report(tmp_path / "run", tmp_path / "rep")
    write_comparison([("a", scored / "eval_a"), ("b", scored / "eval_b")], tmp_path / "cmp")
    for out in (tmp_path / "rep", tmp_path / "cmp"):
        measured = [r for r in _csv(out / "tables.csv") if r["table"].startswith("table")]
        measured = [r for r in measured if r["section"] == "measured" and r["text"] != "-"]
        assert measured and all(r["text"] == "12345" for r in measured)
        pngs = list((out / "figures").glob("*.png"))
        assert pngs and all(p.read_bytes() == PNG + b"engine" for p in pngs)


def test_default_table_follows_the_reference(tmp_path, run_cli):
    """Table 2 (3DIRCADb) when every entry was scored on a 3DIRCADb reference, else 1."""
    from tests.helpers.report_fakes import fake_summary, write_summary

    liver = [0.9, 0.92, 0.95, 0.91]
    for name, shift in (("a", 0.0), ("b", 0.02)):
        summary = fake_summary(liver, [v - 0.3 + shift for v in liver])
        summary["meta"]["reference_layout"] = "ircadb"
        write_summary(tmp_path / name / "summary.json", summary)
    code, _, err = run_cli(
        "compare", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", "-o", tmp_path / "c"
    )
    assert code == 0, err
    tables = {r["table"] for r in _csv(tmp_path / "c" / "tables.csv")}
    assert "table2" in tables and "table1" not in tables
    code, _, err = run_cli(
        "compare",
        f"a={tmp_path / 'a'}",
        f"b={tmp_path / 'b'}",
        "-o",
        tmp_path / "c",
        "--table",
        "1",
        "--overwrite",  # the first comparison is there: replaced only when asked
    )
    assert code == 0 and "table1" in {r["table"] for r in _csv(tmp_path / "c" / "tables.csv")}


def test_with_and_without_peer_metrics_compare(scored, tmp_path, run_cli):
    """An evaluation without the peer metrics has no NSD tolerance to conflict with: it is
    compared, and left out of the further-metrics tables it has no numbers for."""
    other = _variant(scored, tmp_path, "other", protocol=PROTOCOL, peer_metrics=False)
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", f"a={scored / 'eval_a'}", f"x={other}", "-o", out)
    assert code == 0, err
    rows = _csv(out / "tables.csv")
    assert {r["config"] for r in rows if r["table"] == "peer_surface"} == {"a"}
    assert {r["config"] for r in rows if r["table"] == "metrics_liver"} == {"a", "x"}
    assert "MIXED" not in (out / "report.md").read_text()
