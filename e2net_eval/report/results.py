"""What a report reads from an ablation run: its description and every evaluation
(summary and per-case frame, `e2net_eval.scores`), as `Entry` objects for the engine.

The run layout is `e2net_eval.rundir`'s (its writers own it); configurations are ordered and
labelled by the catalogue (`reference_models/registry.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.report.entries import Entry
from e2net_eval.rundir import ABLATION_JSON, SET_TITLES, eval_summaries
from e2net_eval.scores import Evaluation, read_evaluation
from e2net_eval.util.jsonio import load_json
from reference_models.registry import get_model, list_models, model_label, model_sort_key

config_sort_key = model_sort_key


def segments_tumour(config: str) -> bool:
    """Whether a configuration has a tumour output (catalogue; unknown names: assume so)."""
    return config not in list_models() or get_model(config).segments_tumour


@dataclass
class RunResults:
    """What a report needs from a run: its description and every evaluation, by set and
    config (`summaries` holds the summary dicts of the same evaluations)."""

    root: Path
    info: dict[str, Any]
    evaluations: dict[str, dict[str, Evaluation]] = field(default_factory=dict)

    @property
    def summaries(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            s: {c: ev.summary for c, ev in by_config.items()}
            for s, by_config in self.evaluations.items()
        }

    @property
    def protocol(self) -> str:
        return str(self.info.get("protocol", "unknown"))

    @property
    def profile(self) -> str:
        return str(self.info.get("profile", "unknown"))

    @property
    def seed(self) -> Any:
        return self.info.get("seed", "unknown")

    def configs(self, set_name: str) -> list[str]:
        return sorted(self.evaluations.get(set_name, {}), key=config_sort_key)

    def entries(self, set_name: str) -> list[Entry]:
        """One `Entry` per configuration of the set, in catalogue order with its label."""
        return [
            Entry(
                config,
                model_label(config),
                self.evaluations[set_name][config],
                self.provenance(set_name),
                {
                    "config": config,
                    "protocol": self.protocol,
                    "profile": self.profile,
                    "seed": self.seed,
                    "split": self.split_label(set_name),
                    "dataset": set_name,
                },
                segments_tumour(config),
            )
            for config in self.configs(set_name)
        ]

    def split_label(self, set_name: str) -> str:
        """E.g. "LiTS validation, 4 cases (split seed 0)" or "3DIRCADb, 3 cases"."""
        summaries = {c: ev.summary for c, ev in self.evaluations.get(set_name, {}).items()}
        n = max((s.get("n_cases", 0) for s in summaries.values()), default=0)
        text = f"{SET_TITLES.get(set_name, set_name)}, {n} cases"
        split = self.info.get("split") or {}
        if set_name == "lits_val" and "seed" in split:
            text += f" (split seed {split['seed']})"
        return text

    def provenance(self, set_name: str) -> str:
        """The label every measured number carries: protocol, profile, seed, split."""
        return (
            f"protocol {self.protocol}, profile {self.profile}, seed {self.seed}, "
            f"{self.split_label(set_name)}"
        )


def load_run(run: str | Path) -> RunResults:
    """Read `RUN/ablation.json` and every `RUN/eval/<set>/<config>/summary.json`."""
    root = Path(run)
    if not root.is_dir():
        raise InputError("run directory not found", path=root)
    info_path = root / ABLATION_JSON
    if not info_path.is_file():
        raise InputError(f"not an ablation run directory: no {ABLATION_JSON}", path=root)
    info = _read(info_path)
    if not isinstance(info, dict):
        raise InputError("expected a JSON object", path=info_path)
    results = RunResults(root=root, info=info)
    for (set_name, config), path in eval_summaries(root).items():
        evaluation = read_evaluation(path.parent)  # summary.json, per_case.csv when present
        _check_summary(evaluation.summary, path)
        results.evaluations.setdefault(set_name, {})[config] = evaluation
    if not results.evaluations:
        raise InputError("no eval/<set>/<config>/summary.json in this run", path=root)
    return results


def _read(path: Path) -> Any:
    try:
        return load_json(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read JSON: {exc}", path=path) from exc


def _check_summary(summary: Any, path: Path) -> None:
    if not isinstance(summary, dict):
        raise InputError("summary.json is not a JSON object", path=path)
    for key in ("regions", "metric_per_case", "tumour_burden"):
        if key not in summary:
            raise InputError(f"summary.json lacks '{key}'", path=path)
    for region in ("liver", "tumour"):
        if region not in summary["regions"]:
            raise InputError(f"summary.json lacks region '{region}'", path=path)
