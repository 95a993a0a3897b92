"""`e2net-eval ablation`: the paper's six configurations end to end, resumable.

Steps, in order (names as recorded in RUN/ablation_state.json):

```
data                      phantom LiTS and 3DIRCADb sets (only without --lits)
overlap                   3DIRCADb patients found among the LiTS cases (data.find_overlap)
split                     RUN/split.json: make_split(seed, exclude=overlap if leak-free)
train:<config>            stage1 first, then each stage-2 config (training.train)
predict:<set>:<config>    LiTS validation cases and 3DIRCADb (inference.predict)
evaluate:<set>:<config>   RUN/eval/<set>/<config>/summary.json (metrics.evaluate)
report                    RUN/report (report.build.write_report)
```

A step is marked done only after it finished, so a killed run resumes at the first step
not done (training itself resumes from its last checkpoint); a rerun with the same
arguments does nothing; a rerun with other arguments into the same folder is refused.
The run-dir layout is described in `e2net_eval.rundir`; the configurations, their order and
their step budgets come from the catalogue (`reference_models/registry.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from e2net_eval import data, inference, metrics, training
from e2net_eval.errors import InputError
from e2net_eval.report import build as report_build
from e2net_eval.rundir import (
    ABLATION_JSON,
    SPLIT_JSON,
    data_dir,
    eval_dir,
    pred_dir,
    report_dir,
    train_dir,
)
from e2net_eval.util.jsonio import dump_json, load_json
from e2net_eval.util.meta import run_meta
from e2net_eval.workflows.state import StateBook, run_lock
from reference_models.registry import get_model, list_models, list_profiles

log = logging.getLogger(__name__)

# The step budget of every configuration per profile is in the catalogue
# (`ModelEntry.budget`); the generated phantom sets are here: LiTS case count, which of them
# are planted as 3DIRCADb patients (as all 20 real 3DIRCADb patients are LiTS cases), and
# the validation size.
PHANTOM_LITS_CASES = 16
PHANTOM_IRCADB_INDICES = (2, 5, 9, 13)
PHANTOM_N_VAL = 4


@dataclass
class AblationArgs:
    """What defines a run; a rerun into the same folder must give the same `fingerprint`."""

    out: Path
    lits: Path | None = None
    ircadb: Path | None = None
    profile: str = "small"
    configs: list[str] = field(default_factory=lambda: list_models())
    seed: int = 0
    paper_protocol: bool = False
    max_steps: int | None = None  # overrides the catalogue budget of every config
    device: str = "auto"  # not part of the fingerprint: a run may resume on another device

    @property
    def protocol(self) -> str:
        return "paper" if self.paper_protocol else "leak-free"

    @property
    def phantom(self) -> bool:
        return self.lits is None

    def steps_for(self, config: str) -> int | None:
        """`max_steps` when given, else the catalogue's budget of `config` in the profile."""
        if self.max_steps is not None:
            return self.max_steps
        return get_model(config).steps_for(self.profile)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "lits": None if self.lits is None else str(Path(self.lits).resolve()),
            "ircadb": None if self.ircadb is None else str(Path(self.ircadb).resolve()),
            "profile": self.profile,
            "configs": list(self.configs),
            "seed": int(self.seed),
            "protocol": self.protocol,
            "max_steps": {c: self.steps_for(c) for c in self.configs},
            "phantom": {
                "lits_cases": PHANTOM_LITS_CASES,
                "ircadb_indices": list(PHANTOM_IRCADB_INDICES),
                "n_val": PHANTOM_N_VAL,
            }
            if self.phantom
            else None,
        }


def normalise_configs(configs: list[str] | tuple[str, ...] | None) -> list[str]:
    """Configs in Table 3 order, the stage-1 one always included (every prediction needs it)."""
    order = list_models()
    chosen = set(configs or order)
    unknown = sorted(chosen - set(order))
    if unknown:
        raise InputError(f"unknown configuration(s) {unknown}; choose from {order}")
    chosen.update(list_models(stage=1))
    return [c for c in order if c in chosen]


def plan(args: AblationArgs) -> list[str]:
    """Every step name of the run, in order."""
    steps = ["data"] if args.phantom else []
    has_ircadb = args.phantom or args.ircadb is not None
    if has_ircadb:
        steps.append("overlap")
    steps.append("split")
    steps += [f"train:{c}" for c in args.configs]
    sets = ["lits_val"] + (["ircadb"] if has_ircadb else [])
    for set_name in sets:
        steps += [f"predict:{set_name}:{c}" for c in args.configs]
    for set_name in sets:
        steps += [f"evaluate:{set_name}:{c}" for c in args.configs]
    steps.append("report")
    return steps


def run_ablation(args: AblationArgs, *, echo: Callable[[str], None] = log.info) -> Path:
    """Run (or resume) the ablation described by `args`; return the report folder."""
    if args.profile not in list_profiles():
        raise InputError(f"unknown profile {args.profile!r}; choose from {list_profiles()}")
    if args.lits is None and args.ircadb is not None:
        raise InputError("--ircadb needs --lits (the models are trained on LiTS)")
    for root in (args.lits, args.ircadb):
        if root is not None and not Path(root).is_dir():
            raise InputError("data folder not found", path=root)
    args.configs = normalise_configs(args.configs)
    if args.device != "auto":  # a bad --device fails now, not after the data and the split
        from e2net_eval.runtime.device import resolve_device

        resolve_device(args.device)
    run = Path(args.out)
    run.mkdir(parents=True, exist_ok=True)
    with run_lock(run):
        return _run_locked(args, run, echo)


def _run_locked(args: AblationArgs, run: Path, echo: Callable[[str], None]) -> Path:
    book = StateBook(run, args.fingerprint())
    steps = plan(args)
    lits_root = Path(args.lits) if args.lits else data_dir(run, "lits")
    ircadb_root = (
        Path(args.ircadb) if args.ircadb else (data_dir(run, "ircadb") if args.phantom else None)
    )
    ctx = _Context(args, run, lits_root, ircadb_root, book)
    todo = [s for s in steps if not book.done(s)]
    echo(
        f"ablation: {len(steps)} steps, {len(steps) - len(todo)} already done; protocol "
        f"{args.protocol}, profile {args.profile}, seed {args.seed} -> {run}"
    )
    bar = tqdm(
        total=len(steps), initial=len(steps) - len(todo), desc="ablation", unit="step", disable=None
    )
    with bar:
        for step in steps:
            if book.done(step):
                continue
            bar.set_postfix_str(step)
            echo(f"[{steps.index(step) + 1}/{len(steps)}] {step}")
            start = time.perf_counter()
            outputs = ctx.run_step(step)
            book.mark(step, outputs, time.perf_counter() - start, args.device)
            ctx.write_info()
            bar.update(1)
    ctx.write_info()
    return report_dir(run)


class _Context:
    """Carries paths and the results of earlier steps; one method per kind of step."""

    def __init__(
        self, args: AblationArgs, run: Path, lits: Path, ircadb: Path | None, book: StateBook
    ):
        self.args, self.run, self.lits, self.ircadb, self.book = args, run, lits, ircadb, book

    # -- bookkeeping ---------------------------------------------------------------------
    def split(self) -> dict[str, Any]:
        return load_json(self.run / SPLIT_JSON)

    def overlap(self) -> list[dict[str, Any]]:
        return self.book.outputs("overlap") if self.book.done("overlap") else []

    def write_info(self) -> None:
        """RUN/ablation.json: what the report prints next to every measured number."""
        a = self.args
        info = {
            "protocol": a.protocol,
            "profile": a.profile,
            "seed": a.seed,
            "device": resolved_device(a.device),
            "configs": a.configs,
            "phantom": a.phantom,
            "data": {"lits": self._rel(self.lits), "ircadb": self._rel(self.ircadb)},
            "max_steps": {c: a.steps_for(c) for c in a.configs},
            "overlap": self.overlap() if self.book.done("overlap") else None,
            "split": self.split() if (self.run / SPLIT_JSON).is_file() else None,
            "meta": run_meta(),
        }
        dump_json(self.run / ABLATION_JSON, info)

    def _rel(self, path: Path | None) -> str | None:
        """A data root as recorded: relative to the run when inside it (the run can move)."""
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.run.resolve()).as_posix()
        except ValueError:
            return str(Path(path).resolve())

    # -- steps ---------------------------------------------------------------------------
    def run_step(self, step: str) -> Any:
        kind, _, rest = step.partition(":")
        if kind == "data":
            return self.make_data()
        if kind == "overlap":
            return self.find_overlap()
        if kind == "split":
            return self.make_split()
        if kind == "train":
            return self.train(rest)
        if kind == "predict":
            set_name, config = rest.split(":")
            return self.predict(set_name, config)
        if kind == "evaluate":
            set_name, config = rest.split(":")
            return self.evaluate(set_name, config)
        if kind == "report":
            report_build.write_report(self.run, report_dir(self.run))
            return [str(report_dir(self.run))]
        raise AssertionError(step)

    def make_data(self) -> list[str]:
        seed = self.args.seed
        data.write_phantom(
            self.lits,
            "lits",
            PHANTOM_LITS_CASES,
            seed,
            unit_spacing=PHANTOM_IRCADB_INDICES,
            overwrite=True,
        )
        data.write_phantom(
            self.ircadb, "ircadb", seed=seed, indices=list(PHANTOM_IRCADB_INDICES), overwrite=True
        )
        return [str(self.lits), str(self.ircadb)]

    def find_overlap(self) -> list[dict[str, Any]]:
        matches = data.find_overlap(data.open_dataset(self.lits), data.open_dataset(self.ircadb))
        log.info("overlap: %d 3DIRCADb patient(s) found among the LiTS cases", len(matches))
        return [dict(m) for m in matches]

    def make_split(self) -> list[str]:
        exclude = [] if self.args.paper_protocol else [m["lits"] for m in self.overlap()]
        n_val = PHANTOM_N_VAL if self.args.phantom else None
        split = data.make_split(
            data.open_dataset(self.lits).case_ids(), self.args.seed, exclude=exclude, n_val=n_val
        )
        split["protocol"] = self.args.protocol
        if self.args.paper_protocol:
            split["in_training_but_3dircadb"] = [m["lits"] for m in self.overlap()]
        dump_json(self.run / SPLIT_JSON, split)
        return [str(self.run / SPLIT_JSON)]

    def train(self, config: str) -> dict[str, Any]:
        """One configuration's training step (resumes an interrupted one)."""
        record = training.train(
            config,
            self.lits,
            train_dir(self.run),
            split=self.run / SPLIT_JSON,
            split_seed=self.args.seed,
            profile=self.args.profile,
            max_steps=self.args.steps_for(config),
            seed=self.args.seed,
            device=self.args.device,
            resume=True,
        )
        return {
            "dir": str(train_dir(self.run) / config),
            "done": record if isinstance(record, dict) else None,
        }

    def predict(self, set_name: str, config: str) -> list[str]:
        root, case_ids = self._set(set_name)
        out = pred_dir(self.run, set_name, config)
        written = inference.predict(
            train_dir(self.run),
            root,
            out,
            config=config,
            case_ids=case_ids,
            device=self.args.device,
        )
        return [str(p) for p in written or []]

    def evaluate(self, set_name: str, config: str) -> list[str]:
        root, case_ids = self._set(set_name)
        out = eval_dir(self.run, set_name, config)
        summary = metrics.evaluate(
            pred_dir(self.run, set_name, config),
            root,
            out,
            case_ids=case_ids,
            protocol=self.args.protocol,
        )
        # every measured number carries its protocol, profile, seed and split
        split = self.split()
        summary = load_json(out / "summary.json") if (out / "summary.json").is_file() else summary
        summary.setdefault("meta", {})["ablation"] = {
            "protocol": self.args.protocol,
            "profile": self.args.profile,
            "seed": self.args.seed,
            "config": config,
            "set": set_name,
            "split_seed": split.get("seed"),
            "n_train": len(split.get("train", [])),
            "excluded_from_training": split.get("exclude", []),
            "max_steps": self.args.steps_for(config),
        }
        dump_json(out / "summary.json", summary)  # keeps evaluate's own n_nonfinite
        return [str(out / "summary.json")]

    def _set(self, set_name: str) -> tuple[Path, list[str] | None]:
        if set_name == "lits_val":
            split = self.split()
            return self.lits, list(split.get("validation", split.get("val", [])))
        assert self.ircadb is not None
        return self.ircadb, None


def resolved_device(device: str) -> str:
    """`auto` as the trainer resolves it (CUDA when available, else CPU), for the record."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def args_as_dict(args: AblationArgs) -> dict[str, Any]:
    """For logging: the arguments as plain JSON values."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(args).items()}
