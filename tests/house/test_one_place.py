"""One fact, one place: a seventh configuration is one catalogue entry and a new metric is
one registry entry. A toy entry of each is registered here (as one line in
`reference_models/registry.py` or `e2net_eval/metrics/registry.py` would) and followed
everywhere it must appear, with nothing else changed."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest

import reference_models
from e2net_eval.metrics import registry as metric_registry
from e2net_eval.metrics.registry import Metric
from reference_models import registry as catalogue
from reference_models.registry import ModelEntry
from tests.helpers.report_fakes import fake_run

TOY = ModelEntry(
    name="dist_dcff_toy",
    label="+ dist + DCFF (toy)",
    stage=2,
    out_channels=2,
    edge_target="dist",
    dcff=True,
    order=6,
    stage2_preference=0,  # preferred over everything: predict's default when trained
    budget={"small": 7, "paper": None},
    ablates="dist",
)


@pytest.fixture
def toy_config():
    with catalogue.registered(TOY):
        yield TOY


def test_catalogue_lists_and_derives(toy_config):
    assert catalogue.list_models("*dcff") == ["edge_dcff", "dist_dcff"]
    assert catalogue.list_models("*dcff*")[-1] == "dist_dcff_toy"
    assert catalogue.list_models(stage=1) == ["stage1"]
    assert catalogue.stage2_preference()[0] == "dist_dcff_toy"
    pairs = catalogue.paired_comparisons()
    assert ("dist_dcff", "dist_dcff_toy") in pairs and ("dist", "dist_dcff_toy") in pairs
    model = reference_models.create_model("dist_dcff_toy", "small")
    assert model.config.name == "dist_dcff_toy" and model.config.input_size == 64


def test_catalogue_order_without_the_toy():
    assert catalogue.list_models() == [
        "stage1",
        "baseline",
        "edge",
        "dist",
        "edge_dcff",
        "dist_dcff",
    ]
    assert catalogue.paired_comparisons() == [
        ("stage1", "baseline"),
        ("baseline", "edge"),
        ("edge", "dist"),
        ("dist", "edge_dcff"),
        ("edge_dcff", "dist_dcff"),
        ("edge", "edge_dcff"),
        ("dist", "dist_dcff"),
    ]
    with pytest.raises(ValueError, match="unknown model"):
        catalogue.get_model("nope")


def test_a_seventh_configuration_shows_up_everywhere(toy_config, run_cli, tmp_path):
    from e2net_eval.report.build import build_tables
    from e2net_eval.report.results import load_run
    from e2net_eval.workflows import ablation as wf

    # `e2net-eval models` lists it
    code, out, err = run_cli("models")
    assert code == 0, err
    assert "dist_dcff_toy" in out.splitlines()[-1]
    # the ablation trains it with its budget, in catalogue order
    args = wf.AblationArgs(out=tmp_path / "abl")
    assert args.configs[-1] == "dist_dcff_toy" and args.steps_for("dist_dcff_toy") == 7
    assert wf.plan(args).index("train:dist_dcff_toy") == wf.plan(args).index("train:dist_dcff") + 1
    # the report orders and labels its rows from the catalogue
    run = tmp_path / "run"
    fake_run(run, configs=("dist_dcff_toy", "stage1", "baseline", "dist", "dist_dcff"))
    results = load_run(run)
    assert results.configs("lits_val")[-1] == "dist_dcff_toy"
    tables = {t.key: t for t in build_tables(results)}
    assert tables["table3"].section("measured")[-1].label == "+ dist + DCFF (toy)"
    paired = [r.label for r in tables["paired_lits_val"].rows]
    assert "+ dist + DCFF (toy) vs + dist + DCFF, liver" in paired
    assert "+ dist + DCFF (toy) vs + dist, tumour" in paired
    # regress gates it
    code, out, err = run_cli("regress", run, run)
    assert code == 0 and "eval/lits_val/dist_dcff_toy/tumour.dice_per_case" in out


def _volume_ratio(region) -> float:
    """Toy per-case metric: predicted / reference volume (undefined without reference)."""
    c = region.counts
    return c.pred / c.ref if c.ref else math.nan


TOY_METRIC = Metric(
    "volume_ratio",
    higher_is_better=False,
    unit="",
    description="toy: predicted over reference volume",
    empty="undefined when the reference is empty",
    level="case",
    compute=_volume_ratio,
    display=("vol ratio", 9, 3),
)


def test_a_new_metric_shows_up_everywhere(run_cli, tmp_path):
    from e2net_eval.data import write_phantom
    from e2net_eval.data.phantom import PhantomSpec

    write_phantom(tmp_path / "ref", PhantomSpec("lits", 2, seed=3, size=32, slices=(8, 10)))
    preds = tmp_path / "pred"
    preds.mkdir()
    for i in range(2):
        shutil.copy(tmp_path / "ref" / f"segmentation-{i}.nii", preds / f"{i}.nii")
    with metric_registry.registered(TOY_METRIC):
        code, out, err = run_cli("evaluate", preds, tmp_path / "ref", "-o", tmp_path / "out")
        assert code == 0, err
        assert "vol ratio" in out.splitlines()[1]  # the printed table
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert summary["regions"]["liver"]["volume_ratio"]["mean"] == pytest.approx(1.0)
        assert summary["metric_per_case"][0]["liver"]["volume_ratio"] == pytest.approx(1.0)
        with open(tmp_path / "out" / "per_case.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert float(rows[0]["volume_ratio"]) == pytest.approx(1.0)
        # regress knows its direction: a larger ratio is worse
        worse = json.loads(json.dumps(summary))
        worse["regions"]["liver"]["volume_ratio"]["mean"] = 1.5
        (tmp_path / "worse.json").write_text(json.dumps(worse))
        code, out, _ = run_cli("regress", tmp_path / "worse.json", tmp_path / "out")
        assert code == 1 and "liver.volume_ratio" in out and "WORSE" in out
    # unregistered again: it is gone from a fresh evaluation
    code, out, _ = run_cli("evaluate", preds, tmp_path / "ref", "-o", tmp_path / "out2")
    assert code == 0 and "volume_ratio" not in (tmp_path / "out2" / "per_case.csv").read_text()
