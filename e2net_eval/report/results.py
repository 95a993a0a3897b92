"""What a report reads from an ablation run: its description and every evaluation
(summary and per-case frame, `e2net_eval.scores`), as `Entry` objects for the engine, and
for a run of several replicates each configuration's entries over replicates (`Replicated`).

The run layout is `e2net_eval.rundir`'s (its writers own it); configurations are ordered and
labelled by the catalogue (`reference_models/registry.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.metrics.registry import REGIONS
from e2net_eval.report.entries import Entry, Replicated
from e2net_eval.rundir import ABLATION_JSON, SET_TITLES, eval_summaries, replicate_summaries
from e2net_eval.scores import Evaluation, read_evaluation
from e2net_eval.util.jsonio import load_json
from reference_models.registry import get_model, list_models, model_label, model_sort_key


def segments_tumour(config: str) -> bool:
    """Whether a configuration has a tumour output (catalogue; unknown names: assume so)."""
    return config not in list_models() or get_model(config).segments_tumour


@dataclass
class ReplicateResults:
    """One replicate of a run: its seeds and its evaluations by set and config."""

    index: int
    split_seed: Any
    seed: Any
    evaluations: dict[str, dict[str, Evaluation]] = field(default_factory=dict)


@dataclass
class RunResults:
    """What a report needs from a run: its description and every evaluation, by set and
    config (`summaries` holds the summary dicts of the same evaluations). `evaluations` are
    replicate 0's (the run folder's own); `replicates` every replicate found, replicate 0
    first (one entry for a one-replicate run)."""

    root: Path
    info: dict[str, Any]
    evaluations: dict[str, dict[str, Evaluation]] = field(default_factory=dict)
    replicates: list[ReplicateResults] = field(default_factory=list)

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
        """Replicate 0's training seed (the run's --seed unless --seeds named another)."""
        recorded = self.info.get("replicates") or []
        if recorded and isinstance(recorded[0], dict) and "seed" in recorded[0]:
            return recorded[0]["seed"]
        return self.info.get("seed", "unknown")

    @property
    def n_replicates(self) -> int:
        """Replicates with evaluations (1 for a run of one)."""
        return max(1, len(self.replicates))

    def _reps(self, set_name: str) -> list[ReplicateResults]:
        return [r for r in self.replicates if set_name in r.evaluations]

    def _meta(self, config: str, set_name: str, seed: Any, split: str) -> dict[str, Any]:
        """The provenance columns of a measured row in tables.csv."""
        return {
            "config": config,
            "protocol": self.protocol,
            "profile": self.profile,
            "seed": seed,
            "split": split,
            "dataset": set_name,
        }

    def replicated(self, set_name: str) -> list[Replicated]:
        """Each configuration of the set over the replicates that evaluated it, in catalogue
        order (empty when the run has fewer than two replicates)."""
        reps = self._reps(set_name)
        if len(reps) < 2:
            return []
        configs = sorted({c for r in reps for c in r.evaluations[set_name]}, key=model_sort_key)
        source = self.replicates_label(set_name)
        seeds = ",".join(str(r.seed) for r in reps)
        out = []
        for config in configs:
            by_rep = {
                r.index: self._entry(set_name, config, r.evaluations[set_name][config], r)
                for r in reps
                if config in r.evaluations[set_name]
            }
            meta = self._meta(config, set_name, seeds, source)
            tumour = segments_tumour(config)
            out.append(Replicated(config, model_label(config), by_rep, source, meta, tumour))
        return out

    def replicates_vary(self, set_name: str) -> str:
        """What differs between the replicates that evaluated the set: "split and training
        seed", "split seed" or "training seed"."""
        reps = self._reps(set_name)
        split = len({str(r.split_seed) for r in reps}) > 1
        train = len({str(r.seed) for r in reps}) > 1
        if split and train:
            return "split and training seed"
        return "split seed" if split else "training seed"

    def replicates_label(self, set_name: str) -> str:
        """E.g. "3 replicates (split seeds 0, 1, 2; seeds 0, 1, 2), LiTS validation, 12
        cases each" (the provenance of a row over replicates)."""
        reps = self._reps(set_name)
        cases = "/".join(str(c) for c in sorted({_n_cases(r.evaluations, set_name) for r in reps}))
        return (
            f"protocol {self.protocol}, profile {self.profile}, {len(reps)} replicates "
            f"(split seeds {', '.join(str(r.split_seed) for r in reps)}; "
            f"seeds {', '.join(str(r.seed) for r in reps)}), "
            f"{SET_TITLES.get(set_name, set_name)}, {cases} cases each"
        )

    def configs(self, set_name: str) -> list[str]:
        return sorted(self.evaluations.get(set_name, {}), key=model_sort_key)

    def entries(self, set_name: str) -> list[Entry]:
        """One `Entry` per configuration of the set (replicate 0), in catalogue order with its
        label."""
        by_config = self.evaluations.get(set_name, {})
        return [self._entry(set_name, c, by_config[c]) for c in self.configs(set_name)]

    def _entry(
        self,
        set_name: str,
        config: str,
        evaluation: Evaluation,
        rep: ReplicateResults | None = None,
    ) -> Entry:
        """The entry of one evaluation (of replicate `rep`, default replicate 0)."""
        if rep is None or rep.index == 0:
            seed, split, source = self.seed, self.split_label(set_name), self.provenance(set_name)
        else:
            seed = rep.seed
            split = _set_size(set_name, rep.evaluations)
            if set_name == "lits_val":
                split += f" (split seed {rep.split_seed})"
            source = (
                f"protocol {self.protocol}, profile {self.profile}, replicate {rep.index}, "
                f"seed {seed}, {split}"
            )
        meta = self._meta(config, set_name, seed, split)
        tumour = segments_tumour(config)
        return Entry(config, model_label(config), evaluation, source, meta, tumour)

    def split_label(self, set_name: str) -> str:
        """E.g. "LiTS validation, 4 cases (split seed 0)" or "3DIRCADb, 3 cases"."""
        text = _set_size(set_name, self.evaluations)
        split = self.info.get("split") or {}
        if set_name == "lits_val" and "seed" in split:
            text += f" (split seed {split['seed']})"
        return text

    def provenance(self, set_name: str) -> str:
        """The label every measured number carries: protocol, profile, seed, split (and, in a
        run of several replicates, that it is replicate 0's)."""
        which = "replicate 0, " if self.n_replicates > 1 else ""
        return (
            f"protocol {self.protocol}, profile {self.profile}, {which}seed {self.seed}, "
            f"{self.split_label(set_name)}"
        )


def _n_cases(evaluations: dict[str, dict[str, Evaluation]], set_name: str) -> int:
    """The largest case count of the set's evaluations (0 when none)."""
    by_config = evaluations.get(set_name, {})
    return max((ev.summary.get("n_cases", 0) for ev in by_config.values()), default=0)


def _set_size(set_name: str, evaluations: dict[str, dict[str, Evaluation]]) -> str:
    return f"{SET_TITLES.get(set_name, set_name)}, {_n_cases(evaluations, set_name)} cases"


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
    results.evaluations = _read_evaluations(eval_summaries(root))
    if not results.evaluations:
        raise InputError("no eval/<set>/<config>/summary.json in this run", path=root)
    seeds = {
        int(r["index"]): r
        for r in info.get("replicates") or []
        if isinstance(r, dict) and isinstance(r.get("index"), int)
    }
    for index, found in replicate_summaries(root).items():
        if seeds and index not in seeds:
            continue  # a folder the run does not list (left from elsewhere): not read
        recorded = seeds.get(index, {})
        if index == 0 and not recorded:  # a run from before replicates: its one seed
            recorded = {
                "split_seed": (info.get("split") or {}).get("seed"),
                "seed": info.get("seed"),
            }
        evaluations = results.evaluations if index == 0 else _read_evaluations(found)
        seeds_of = (recorded.get("split_seed", "unknown"), recorded.get("seed", "unknown"))
        results.replicates.append(ReplicateResults(index, *seeds_of, evaluations))
    return results


def _read_evaluations(found: dict[tuple[str, str], Path]) -> dict[str, dict[str, Evaluation]]:
    """Every summary.json (with per_case.csv when present) by set and config."""
    out: dict[str, dict[str, Evaluation]] = {}
    for (set_name, config), path in found.items():
        evaluation = read_evaluation(path.parent)
        _check_summary(evaluation.summary, path)
        out.setdefault(set_name, {})[config] = evaluation
    return out


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
    for region in REGIONS:
        if region not in summary["regions"]:
            raise InputError(f"summary.json lacks region '{region}'", path=path)
