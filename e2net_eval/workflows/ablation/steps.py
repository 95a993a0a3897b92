"""What each step of the ablation does (`StepContext.run_step`), in whatever process runs it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2net_eval import data, inference, metrics, training
from e2net_eval.report import build as report_build
from e2net_eval.rundir import (
    SPLIT_JSON,
    STATE_JSON,
    SUMMARY_JSON,
    data_dir,
    eval_dir,
    pred_dir,
    replicate_dir,
    report_dir,
    shared_cache,
    split_lists,
    train_dir,
)
from e2net_eval.util.jsonio import dump_json, load_json
from e2net_eval.workflows.ablation.args import (
    PHANTOM_IRCADB_INDICES,
    PHANTOM_LITS_CASES,
    PHANTOM_N_VAL,
    AblationArgs,
    Replicate,
)
from e2net_eval.workflows.ablation.graph import Step
from reference_models.registry import stage1_name

log = logging.getLogger(__name__)


def execute_step(ctx: StepContext, name: str) -> Any:
    """Run one step; returns what the state file records. The outputs also stay in `ctx`
    for the process's later steps (a cluster job runs overlap and split together)."""
    out = ctx.run_step(Step.parse(name))
    ctx.outputs[name] = out
    return out


@dataclass
class StepContext:
    """What every step needs: the arguments and the data roots (picklable, for workers)."""

    args: AblationArgs
    run: Path
    lits: Path
    ircadb: Path | None
    outputs: dict[str, Any] = field(default_factory=dict)  # steps this process ran

    @classmethod
    def for_run(cls, args: AblationArgs, run: Path) -> StepContext:
        lits = Path(args.lits) if args.lits else data_dir(run, "lits")
        ircadb = data_dir(run, "ircadb") if args.phantom else None
        return cls(args, run, lits, Path(args.ircadb) if args.ircadb else ircadb)

    def replicate(self, index: int) -> Replicate:
        return self.args.replicate_list()[index]

    def root(self, rep: Replicate) -> Path:
        """The replicate's folder (the run folder for replicate 0; `rundir.replicate_dir`)."""
        return replicate_dir(self.run, rep.index)

    def split(self, rep: Replicate | None = None) -> dict[str, Any]:
        root = self.run if rep is None else self.root(rep)
        return load_json(root / SPLIT_JSON)

    def overlap(self) -> list[dict[str, Any]]:
        """The overlap step's matches: from this process (a cluster job that found them),
        else from the state file (written before `split` starts)."""
        name = Step("overlap").name
        if name in self.outputs:
            return self.outputs[name] or []
        path = self.run / STATE_JSON
        step = load_json(path).get("steps", {}).get(name, {}) if path.is_file() else {}
        return (step.get("outputs") or []) if step.get("done") else []

    def progress(self, name: str) -> list[tuple[str, int]]:
        """What a step has saved so far (checkpoint files, times): a requeued job saving nothing new
        made no progress."""
        step = Step.parse(name)
        if step.kind != "train":
            return []
        folder = train_dir(self.root(self.replicate(step.replicate))) / step.config
        if not folder.is_dir():
            return []
        return sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("checkpoint*.pt"))

    def run_step(self, step: Step) -> Any:
        rep = self.replicate(step.replicate)
        shared = step.replicate == 0  # data, overlap and report exist once
        if step.kind == "data" and shared:
            return self.make_data(step.set)
        if step.kind == "overlap" and shared:
            return self.find_overlap()
        if step.kind == "split":
            return self.make_split(rep)
        if step.kind == "cache":
            return self.prepare_training(rep)
        if step.kind == "train":
            return self.train(rep, step.config)
        if step.kind == "predict":
            return self.predict(rep, step.set, step.config)
        if step.kind == "evaluate":
            return self.evaluate(rep, step.set, step.config)
        if step.kind == "report" and shared:
            report_build.write_report(self.run, report_dir(self.run), overwrite=True)
            return [str(report_dir(self.run))]
        raise AssertionError(step.name)

    def make_data(self, which: str) -> list[str]:
        # the phantom depends on --seed alone, never on a replicate's seeds: made once
        seed, ircadb = self.args.seed, list(PHANTOM_IRCADB_INDICES)
        if which == "lits":
            spec = data.PhantomSpec("lits", PHANTOM_LITS_CASES, seed, unit_spacing=ircadb)
            data.write_phantom(self.lits, spec, overwrite=True)
            return [str(self.lits)]
        data.write_phantom(
            self.ircadb, data.PhantomSpec("ircadb", seed=seed, indices=ircadb), overwrite=True
        )
        return [str(self.ircadb)]

    def find_overlap(self) -> list[dict[str, Any]]:
        matches = data.find_overlap(data.open_dataset(self.lits), data.open_dataset(self.ircadb))
        log.info("overlap: %d 3DIRCADb patient(s) found among the LiTS cases", len(matches))
        return [dict(m) for m in matches]

    def make_split(self, rep: Replicate) -> list[str]:
        exclude = [] if self.args.paper_protocol else [m["lits"] for m in self.overlap()]
        n_val = PHANTOM_N_VAL if self.args.phantom else None
        split = data.make_split(
            data.open_dataset(self.lits).case_ids(),
            rep.split_seed,
            exclude=exclude,
            n_val=n_val,
            strata=self.phantom_strata(),
        )
        split["protocol"] = self.args.protocol
        if self.args.paper_protocol:
            split["in_training_but_3dircadb"] = [m["lits"] for m in self.overlap()]
        path = self.root(rep) / SPLIT_JSON
        path.parent.mkdir(parents=True, exist_ok=True)
        dump_json(path, split)
        return [str(path)]

    def phantom_strata(self) -> dict[str, bool] | None:
        """Whether each generated phantom case has tumour (its `phantom.json`), so the
        validation set gets the set's share of tumour-free cases; None for user data."""
        record = self.lits / "phantom.json"
        if not self.args.phantom or not record.is_file():
            return None
        return {str(c["case_id"]): c["tumours"] > 0 for c in load_json(record)["cases"]}

    def prepare_training(self, rep: Replicate) -> list[str]:
        """The training run's split and slice cache, once, before trainers run in parallel
        (replicates after the first read replicate 0's cache: the same cases)."""
        cache = training.prepare_run(
            self.lits,
            train_dir(self.root(rep)),
            split=self.root(rep) / SPLIT_JSON,
            split_seed=rep.split_seed,
            cache_dir=shared_cache(self.run),
        )
        return [str(cache)]

    def train(self, rep: Replicate, config: str) -> dict[str, Any]:
        """One configuration's training step (resumes an interrupted one)."""
        root = self.root(rep)
        record = training.train(
            config,
            self.lits,
            train_dir(root),
            split=root / SPLIT_JSON,
            split_seed=rep.split_seed,
            profile=self.args.profile,
            max_steps=self.args.steps_for(config),
            seed=rep.seed,
            device=self.args.device,
            resume=True,
            progress=False,
            cache_dir=shared_cache(self.run),
            backbone_weights=self.args.backbone_weights,
        )
        return {
            "dir": str(train_dir(root) / config),
            "done": record if isinstance(record, dict) else None,
        }

    def predict(self, rep: Replicate, set_name: str, config: str) -> list[str]:
        root, case_ids = self._set(rep, set_name)
        here = self.root(rep)
        stage1 = stage1_name()
        written = inference.predict(
            train_dir(here),
            root,
            pred_dir(here, set_name, config),
            config=config,
            case_ids=case_ids,
            device=self.args.device,
            stage1_dir=None if config == stage1 else pred_dir(here, set_name, stage1),
            progress=False,
            overwrite=True,
        )
        return [str(p) for p in written or []]

    def evaluate(self, rep: Replicate, set_name: str, config: str) -> list[str]:
        root, case_ids = self._set(rep, set_name)
        here = self.root(rep)
        out = eval_dir(here, set_name, config)
        metrics.evaluate(
            pred_dir(here, set_name, config),
            root,
            out,
            case_ids=case_ids,
            protocol=self.args.protocol,
            progress=False,
            overwrite=True,
            extra_meta={"ablation": self.evaluation_record(rep, set_name, config)},
        )
        return [str(out / SUMMARY_JSON)]

    def evaluation_record(self, rep: Replicate, set_name: str, config: str) -> dict[str, Any]:
        """What every measured number carries: protocol, profile, seeds and split."""
        split = self.split(rep)
        record = {
            "protocol": self.args.protocol,
            "profile": self.args.profile,
            "seed": rep.seed,
            "config": config,
            "set": set_name,
            "split_seed": split.get("seed"),
            "n_train": len(split.get("train", [])),
            "excluded_from_training": split.get("exclude", []),
            "max_steps": self.args.steps_for(config),
        }
        if rep.index:
            record["replicate"] = rep.index
        if self.args.backbone_weights is not None:
            record["backbone_sha256"] = self.args.backbone()["sha256"]
        return record

    def _set(self, rep: Replicate, set_name: str) -> tuple[Path, list[str] | None]:
        if set_name == "lits_val":
            path = self.root(rep) / SPLIT_JSON
            return self.lits, split_lists(load_json(path), path)[1]
        assert self.ircadb is not None
        return self.ircadb, None

    def rel(self, path: Path | None) -> str | None:
        """A data root as recorded: relative to the run when inside it (the run can move)."""
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.run.resolve()).as_posix()
        except ValueError:
            return str(Path(path).resolve())
