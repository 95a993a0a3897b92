"""`e2net-eval ablation`: the paper's six configurations end to end, resumable, replicated.

Steps (names as recorded in RUN/ablation_state.json):

```
data:lits, data:ircadb    phantom LiTS and 3DIRCADb sets (only without --lits)
overlap                   3DIRCADb patients found among the LiTS cases (data.find_overlap)
split                     RUN/split.json: make_split(seed, exclude=overlap if leak-free)
cache                     the training run's split and slice cache (training.prepare_run)
train:<config>            every configuration (training.train); none depends on another
                          (stage 2 trains on the reference liver boxes)
predict:<set>:<stage1>    stage-1 liver of the LiTS validation cases and of 3DIRCADb
predict:<set>:<config>    stage 2 inside that stage-1 liver (inference.predict)
evaluate:<set>:<config>   RUN/eval/<set>/<config>/summary.json (metrics.evaluate)
report                    RUN/report (report.build.write_report)
```

Replicates (`--replicates K`, `--split-seeds`, `--seeds`): replicate r has its own split
seed and training seed (default: seed + r for both) and repeats the steps from ``split`` to
``evaluate`` under the names ``rep<r>:split``, ``rep<r>:train:<config>``, ... in its own
folder (`rundir.replicate_dir`). Replicate 0 keeps the plain names and the plain layout, so
the default one-replicate run is exactly the run it always was. The phantom data and the
overlap are made once (they do not depend on the split), every replicate's training reads
replicate 0's slice cache, and the one ``report`` step waits for every evaluation. The
expansion is inside `steps`: whatever runs the graph (`run_jobs`, a cluster launcher) runs
replicates without knowing about them.

The steps form a graph (`steps`); `--workers N` runs independent steps in N processes at
once (`workflows.jobs`), the longest chain first. `--launcher slurm` runs the same graph as
SLURM jobs through submitit (`workflows.cluster`: one job per configuration's training, one
for its predictions and evaluations, one for the data preparation). Every step is a function of its inputs,
so the results equal a one-worker run's (the small profile trains with one torch thread per
process either way). A step is marked done only after it finished, so a killed run resumes
at the steps not done (training itself resumes from its last checkpoint); a rerun with the
same arguments does nothing; a rerun with other arguments into the same folder is refused,
except one that only appends replicates (`fingerprint_extends`): the finished replicates are
kept and the steps that read every replicate (the report) run again. A finished step whose
dependency is not finished is stale and runs again.
The run-dir layout is described in `e2net_eval.rundir`; the configurations, their order,
their step budgets and relative step costs come from the catalogue
(`reference_models/registry.py`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from e2net_eval import data, inference, metrics, training
from e2net_eval.errors import InputError
from e2net_eval.report import build as report_build
from e2net_eval.rundir import (
    ABLATION_JSON,
    LOCK_FILE,
    SPLIT_JSON,
    STATE_JSON,
    SUMMARY_JSON,
    data_dir,
    eval_dir,
    pred_dir,
    replicate_dir,
    report_dir,
    shared_cache,
    train_dir,
)
from e2net_eval.util.jsonio import dump_json, load_json
from e2net_eval.util.meta import run_meta
from e2net_eval.util.outdir import adopt_legacy, work_folder
from e2net_eval.workflows.jobs import Job, available_cores, run_jobs
from e2net_eval.workflows.state import StateBook
from reference_models.registry import get_model, get_profile, list_models, list_profiles

log = logging.getLogger(__name__)

# The step budget of every configuration per profile is in the catalogue
# (`ModelEntry.budget`); the generated phantom sets are here: LiTS case count, which of them
# are planted as 3DIRCADb patients (as all 20 real 3DIRCADb patients are LiTS cases), and
# the validation size. 2 of the 8 planted patients have no tumour, as 5 of the 20 real ones.
PHANTOM_LITS_CASES = 60
PHANTOM_IRCADB_INDICES = (2, 5, 9, 13, 17, 22, 27, 31)
PHANTOM_N_VAL = 16
#: Relative seconds of the other steps, per case (phantom generation, prediction,
#: evaluation; training costs come from the catalogue's `step_cost`): only to start the
#: longest chains first when steps run in parallel.
CASE_COST = {"data": 0.3, "predict": 0.5, "evaluate": 0.1}


@dataclass(frozen=True)
class Replicate:
    """One repetition of the ablation: its index, split seed and training seed."""

    index: int
    split_seed: int
    seed: int

    @property
    def prefix(self) -> str:
        """What its step names start with: nothing for replicate 0, else ``rep<r>:``."""
        return "" if self.index == 0 else f"rep{self.index}:"

    def step(self, name: str) -> str:
        return self.prefix + name


_REPLICATE_STEP = re.compile(r"rep(\d+):(.+)")


def parse_step(step: str) -> tuple[int, str]:
    """(replicate index, step name without the prefix): ``rep2:train:dist`` -> (2, ``train:dist``),
    ``train:dist`` -> (0, ``train:dist``)."""
    hit = _REPLICATE_STEP.fullmatch(step)
    return (int(hit.group(1)), hit.group(2)) if hit else (0, step)


def step_kind(step: str) -> str:
    """A step's kind (data, overlap, split, cache, train, predict, evaluate, report) in any
    replicate: what the cluster launcher groups jobs by."""
    return parse_step(step)[1].partition(":")[0]


@dataclass
class AblationArgs:
    """What defines a run; a rerun into the same folder must give the same `fingerprint`
    (or one that only appends replicates, see `fingerprint_extends`)."""

    out: Path
    lits: Path | None = None
    ircadb: Path | None = None
    profile: str = "small"
    configs: list[str] = field(default_factory=lambda: list_models())
    seed: int = 0
    paper_protocol: bool = False
    max_steps: int | None = None  # overrides the catalogue budget of every config
    device: str = "auto"  # not part of the fingerprint: a run may resume on another device
    workers: int | None = None  # not part of the fingerprint: results do not depend on it
    replicates: int | None = None  # None: as many as the seed lists name, else 1
    split_seeds: list[int] | None = None  # per replicate (default seed + r)
    train_seeds: list[int] | None = None  # per replicate (default seed + r); CLI --seeds
    backbone_weights: Path | None = None  # Res2Net-50 checkpoint for every encoder
    _backbone: dict[str, str] | None = field(default=None, init=False, repr=False)
    # where the steps run (not part of the fingerprint either): "local" (this machine,
    # `workers` processes), "slurm" or "submitit-local" (workflows/cluster.py, `slurm`)
    launcher: str = "local"
    slurm: Any = None  # workflows.cluster.SlurmOptions for the cluster launchers

    @property
    def protocol(self) -> str:
        return "paper" if self.paper_protocol else "leak-free"

    @property
    def phantom(self) -> bool:
        return self.lits is None

    @property
    def has_ircadb(self) -> bool:
        return self.phantom or self.ircadb is not None

    def steps_for(self, config: str) -> int | None:
        """`max_steps` when given, else the catalogue's budget of `config` in the profile."""
        if self.max_steps is not None:
            return self.max_steps
        return get_model(config).steps_for(self.profile)

    def replicate_list(self) -> list[Replicate]:
        """The replicates: `replicates` of them (or as many as a seed list names), replicate r
        with split seed ``split_seeds[r]`` and training seed ``train_seeds[r]``, each
        ``seed + r`` when not named. The default is one replicate with `seed` for both."""
        count = self.replicates
        for option, seeds in (("--split-seeds", self.split_seeds), ("--seeds", self.train_seeds)):
            if seeds is None:
                continue
            if count is None:
                count = len(seeds)
            elif len(seeds) != count:
                raise InputError(f"{option} names {len(seeds)} seed(s) for {count} replicate(s)")
        count = 1 if count is None else count
        if count < 1:
            raise InputError(f"--replicates must be at least 1, got {count}")
        split = list(self.split_seeds or [self.seed + r for r in range(count)])
        train = list(self.train_seeds or [self.seed + r for r in range(count)])
        pairs = [(int(a), int(b)) for a, b in zip(split, train, strict=True)]
        twice = sorted({p for p in pairs if pairs.count(p) > 1})
        if twice:
            raise InputError(
                f"replicates repeat (split seed, seed) {twice}: a replicate must differ in at "
                "least one of its seeds"
            )
        return [Replicate(r, a, b) for r, (a, b) in enumerate(pairs)]

    def backbone(self) -> dict[str, str] | None:
        """``{"path", "sha256"}`` of `backbone_weights` (the file is read once), or None."""
        if self.backbone_weights is None:
            return None
        if self._backbone is None:
            from e2net_eval.runtime.weights import backbone_record

            self._backbone = backbone_record(self.backbone_weights)
        return self._backbone

    def fingerprint(self) -> dict[str, Any]:
        """The arguments that decide the results. Keys added for replicates and backbone
        weights appear only when they differ from the defaults, so a run started before
        they existed resumes as it is."""
        out: dict[str, Any] = {
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
        reps = self.replicate_list()
        if [(r.split_seed, r.seed) for r in reps] != [(self.seed, self.seed)]:
            out["replicates"] = [{"split_seed": r.split_seed, "seed": r.seed} for r in reps]
        backbone = self.backbone()
        if backbone is not None:
            # the file's content decides the results, not where it lies: the same file under
            # another path resumes, another file is refused
            out["backbone_sha256"] = backbone["sha256"]
        return out


def _replicate_seeds(fingerprint: dict[str, Any]) -> list[dict[str, int]]:
    seed = fingerprint.get("seed")
    return fingerprint.get("replicates") or [{"split_seed": seed, "seed": seed}]


def fingerprint_extends(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when `new` is `old` with replicates appended: every other argument equal and
    `old`'s replicate seeds the first of `new`'s. Such a rerun keeps the finished
    replicates and adds the others; dropping, reordering or changing one is refused."""
    rest_old = {k: v for k, v in old.items() if k != "replicates"}
    rest_new = {k: v for k, v in new.items() if k != "replicates"}
    have, want = _replicate_seeds(old), _replicate_seeds(new)
    return rest_old == rest_new and len(want) > len(have) and want[: len(have)] == have


def normalise_configs(configs: list[str] | tuple[str, ...] | None) -> list[str]:
    """Configs in Table 3 order, the stage-1 one always included (every prediction needs it)."""
    order = list_models()
    chosen = set(configs or order)
    unknown = sorted(chosen - set(order))
    if unknown:
        raise InputError(f"unknown configuration(s) {unknown}; choose from {order}")
    chosen.update(list_models(stage=1))
    return [c for c in order if c in chosen]


def steps(args: AblationArgs) -> list[Job]:
    """Every step of the run with its dependencies, in the order a one-worker run takes:
    the shared data steps, then each replicate's steps (see the module docstring), then the
    report."""
    n_lits = PHANTOM_LITS_CASES if args.phantom else 131
    n_val = PHANTOM_N_VAL if args.phantom else 20
    n_ircadb = len(PHANTOM_IRCADB_INDICES) if args.phantom else 20
    jobs: list[Job] = []
    made: tuple[str, ...] = ()
    if args.phantom:
        made = ("data:lits", "data:ircadb")
        jobs.append(Job("data:lits", (), CASE_COST["data"] * n_lits))
        jobs.append(Job("data:ircadb", (), 2 * CASE_COST["data"] * n_ircadb))
    if args.has_ircadb:
        jobs.append(Job("overlap", made, 1.0))
    split_deps = ("overlap",) if args.has_ircadb else made
    stage1 = list_models(stage=1)[0]
    sets = {"lits_val": n_val, **({"ircadb": n_ircadb} if args.has_ircadb else {})}
    for rep in args.replicate_list():
        at = rep.step
        jobs.append(Job(at("split"), split_deps, 0.1))
        if rep.index == 0:
            jobs.append(Job("cache", ("split",), 0.05 * n_lits))
        else:  # replicate 0's cache holds every case: only the split is written
            jobs.append(Job(at("cache"), (at("split"), "cache"), 0.005 * n_lits))
        for c in args.configs:
            budget = args.steps_for(c) or 100_000
            cost = get_model(c).step_cost * budget / 100
            jobs.append(Job(at(f"train:{c}"), (at("cache"),), cost))
        for set_name, n in sets.items():
            for c in args.configs:
                deps = (at(f"train:{c}"),)
                if c != stage1:
                    deps += (at(f"predict:{set_name}:{stage1}"),)
                jobs.append(Job(at(f"predict:{set_name}:{c}"), deps, CASE_COST["predict"] * n))
        for set_name, n in sets.items():
            for c in args.configs:
                deps = (at(f"predict:{set_name}:{c}"),)
                jobs.append(Job(at(f"evaluate:{set_name}:{c}"), deps, CASE_COST["evaluate"] * n))
    evaluations = tuple(j.name for j in jobs if parse_step(j.name)[1].startswith("evaluate:"))
    jobs.append(Job("report", evaluations, 3.0))
    return _chain_costs(jobs)


def _chain_costs(jobs: list[Job]) -> list[Job]:
    """Each job's cost replaced by the longest chain of costs from it to the end, so the
    scheduler first starts what most work waits on (stage 1 before stage-2 configs)."""
    after: dict[str, list[str]] = {j.name: [] for j in jobs}
    for j in jobs:
        for d in j.deps:
            after[d].append(j.name)
    chain: dict[str, float] = {}
    for j in reversed(jobs):  # the list is in dependency order
        chain[j.name] = j.cost + max((chain[n] for n in after[j.name]), default=0.0)
    return [Job(j.name, j.deps, chain[j.name]) for j in jobs]


def plan(args: AblationArgs) -> list[str]:
    """Every step name of the run, in the order a one-worker run takes."""
    return [j.name for j in steps(args)]


def default_workers(args: AblationArgs) -> int:
    """Worker processes: one per CPU core for the small profile on the CPU, else one (a
    GPU, or the paper profile's multi-threaded convolutions, already fill the machine)."""
    if resolved_device(args.device) != "cpu" or args.profile != "small":
        return 1
    return available_cores()


def run_ablation(args: AblationArgs, *, echo: Callable[[str], None] = log.info) -> Path:
    """Run (or resume) the ablation described by `args`; return the report folder."""
    if args.profile not in list_profiles():
        raise InputError(f"unknown profile {args.profile!r}; choose from {list_profiles()}")
    if args.lits is None and args.ircadb is not None:
        raise InputError("--ircadb needs --lits (the models are trained on LiTS)")
    for root in (args.lits, args.ircadb):
        if root is not None and not Path(root).is_dir():
            raise InputError("data folder not found", path=root)
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    from e2net_eval.workflows.cluster import LAUNCHERS

    if args.launcher not in LAUNCHERS:
        raise InputError(f"unknown launcher {args.launcher!r}; choose from {list(LAUNCHERS)}")
    if args.launcher == "local" and args.slurm is not None:
        raise InputError("--slurm-* options need --launcher slurm")
    if args.launcher != "local" and args.workers is not None:
        raise InputError("--workers is for --launcher local (a cluster runs every job at once)")
    if args.launcher == "slurm":
        import shutil

        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise InputError(
                "--launcher slurm: no sbatch/srun on PATH (run it on a SLURM login node)"
            )
    if args.launcher != "local" and args.slurm is not None:
        tasks = args.slurm.tasks("train")
        batch = get_profile(args.profile).train["batch_size"]
        if batch % tasks:
            raise InputError(
                f"--slurm-gpus-per-job {tasks}: the {args.profile} profile's batch of {batch} "
                "does not split evenly over that many processes"
            )
    args.configs = normalise_configs(args.configs)
    args.replicate_list()  # bad replicate seeds fail now
    if args.device != "auto":  # a bad --device fails now, not after the data and the split
        from e2net_eval.runtime.device import resolve_device

        resolve_device(args.device)
    if args.backbone_weights is not None:  # a file that does not fit fails now too
        from e2net_eval.runtime.weights import check_backbone

        check_backbone(args.backbone_weights, args.configs, args.profile)
        args.backbone()
    if args.launcher == "slurm":  # a job SLURM refuses: exit 2 now, before any work
        from e2net_eval.workflows.cluster import SlurmOptions, check_submittable

        check_submittable(args.slurm or SlurmOptions(), args.profile)
    run = Path(args.out)
    with work_folder(
        run,
        kind="ablation-run",
        inputs=[args.lits, args.ircadb],
        lock_name=LOCK_FILE,
        who="ablation",
    ):
        return _run_locked(args, run, echo)


def finished_steps(jobs: list[Job], marked: Callable[[str], bool]) -> list[str]:
    """The steps to skip: marked done, and every dependency among them too (in dependency
    order). A step marked done after a dependency that is not (a replicate added to a run
    makes the report's inputs change) is stale and runs again."""
    done: set[str] = set()
    for job in jobs:  # the plan is in dependency order
        if marked(job.name) and all(d in done for d in job.deps):
            done.add(job.name)
    return [j.name for j in jobs if j.name in done]


def _run_locked(args: AblationArgs, run: Path, echo: Callable[[str], None]) -> Path:
    book = StateBook(run, args.fingerprint(), extends=fingerprint_extends)
    jobs = steps(args)
    ctx = _Context.for_run(args, run)
    done = finished_steps(jobs, book.done)
    stale = [j.name for j in jobs if book.done(j.name) and j.name not in done]
    if args.launcher != "local":
        return _run_on_cluster(args, run, book, jobs, ctx, done, stale, echo)
    from e2net_eval.workflows.cluster import in_flight

    elsewhere = in_flight(book)
    if elsewhere:
        raise InputError(
            f"cluster jobs of this run may still be running: {', '.join(elsewhere)}; rerun "
            "with the launcher that submitted them",
            path=run,
        )
    workers = max(1, min(args.workers or default_workers(args), len(jobs) - len(done)))
    _announce(args, run, jobs, done, stale, f"{workers} worker(s)", echo)
    order = [j.name for j in jobs]
    bar = tqdm(total=len(jobs), initial=len(done), desc="ablation", unit="step", disable=None)

    def started(name: str) -> None:
        bar.set_postfix_str(name)
        echo(f"[{order.index(name) + 1}/{len(jobs)}] {name}")

    def finished(name: str, outputs: Any, seconds: float) -> None:
        book.mark(name, outputs, seconds, args.device)
        ctx.write_info(book)
        bar.update(1)

    threads = get_profile(args.profile).cpu_threads
    with bar:
        run_jobs(
            jobs,
            execute_step,
            ctx,
            workers=workers,
            done=done,
            on_start=started,
            on_done=finished,
            worker_threads=threads,
        )
    ctx.write_info(book)
    return report_dir(run)


def _announce(
    args: AblationArgs,
    run: Path,
    jobs: list[Job],
    done: list[str],
    stale: list[str],
    where: str,
    echo: Callable[[str], None],
) -> None:
    """The run's header lines: steps, protocol, where they run, replicates, stale steps."""
    reps = args.replicate_list()
    echo(
        f"ablation: {len(jobs)} steps, {len(done)} already done; protocol {args.protocol}, "
        f"profile {args.profile}, seed {args.seed}, {where} -> {run}"
    )
    if len(reps) > 1:
        echo(
            f"ablation: {len(reps)} replicates, split seeds "
            f"{', '.join(str(r.split_seed) for r in reps)}; training seeds "
            f"{', '.join(str(r.seed) for r in reps)}"
        )
    if args.backbone_weights is not None:
        echo(f"ablation: every encoder starts from {args.backbone_weights}")
    if stale:
        echo(f"ablation: {len(stale)} finished step(s) run again, their inputs grew: {stale}")


def _run_on_cluster(
    args: AblationArgs,
    run: Path,
    book: StateBook,
    jobs: list[Job],
    ctx: _Context,
    done: list[str],
    stale: list[str],
    echo: Callable[[str], None],
) -> Path:
    """The same graph as SLURM (or submitit-local) jobs (`workflows.cluster`); `done` are
    the steps to skip (`finished_steps`)."""
    from e2net_eval.workflows.cluster import SlurmOptions, run_on_cluster

    opts = args.slurm or SlurmOptions()
    executor = "local" if args.launcher == "submitit-local" else "slurm"
    if opts.executor != executor:
        opts = replace(opts, executor=executor)
    _announce(args, run, jobs, done, stale, f"launcher {args.launcher}", echo)

    def mark(step: str, outputs: Any, seconds: float, job_id: str) -> None:
        book.mark(step, outputs, seconds, args.device, job=job_id)
        ctx.write_info(book)

    run_on_cluster(
        jobs,
        execute=execute_step,
        spec=ctx,
        book=book,
        done=done,
        opts=opts,
        run=run,
        profile=args.profile,
        threads=get_profile(args.profile).cpu_threads,
        mark=mark,
        echo=echo,
        kind_of=step_kind,
    )
    ctx.write_info(book)
    return report_dir(run)


def execute_step(ctx: _Context, step: str) -> Any:
    """Run one step (in this process, a worker or a cluster job); returns what the state
    file records. The outputs are also kept in `ctx` for the later steps of the same
    process (a cluster job runs overlap and split together, before the state file has the
    overlap)."""
    out = ctx.run_step(step)
    ctx.outputs[step] = out
    return out


@dataclass
class _Context:
    """What every step needs: the arguments and the data roots (picklable, for workers)."""

    args: AblationArgs
    run: Path
    lits: Path
    ircadb: Path | None
    outputs: dict[str, Any] = field(default_factory=dict)  # steps this process ran

    @classmethod
    def for_run(cls, args: AblationArgs, run: Path) -> _Context:
        lits = Path(args.lits) if args.lits else data_dir(run, "lits")
        ircadb = (
            Path(args.ircadb)
            if args.ircadb
            else (data_dir(run, "ircadb") if args.phantom else None)
        )
        return cls(args, run, lits, ircadb)

    # -- bookkeeping ---------------------------------------------------------------------
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
        if "overlap" in self.outputs:
            return self.outputs["overlap"] or []
        path = self.run / STATE_JSON
        step = load_json(path).get("steps", {}).get("overlap", {}) if path.is_file() else {}
        return (step.get("outputs") or []) if step.get("done") else []

    def write_info(self, book: StateBook) -> None:
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
            "overlap": book.outputs("overlap") if book.done("overlap") else None,
            "split": self.split() if (self.run / SPLIT_JSON).is_file() else None,
            "replicates": [self._replicate_info(rep) for rep in a.replicate_list()],
            "backbone_weights": a.backbone(),
            "meta": run_meta(),
        }
        if a.launcher != "local":  # trained on the compute nodes, not where this process runs
            info["launcher"] = a.launcher
            info["device"] = self.trained_on(book) or a.device
        dump_json(self.run / ABLATION_JSON, info)

    def _replicate_info(self, rep: Replicate) -> dict[str, Any]:
        """One replicate as ablation.json records it: seeds, folder, split sizes."""
        path = self.root(rep) / SPLIT_JSON
        split = load_json(path) if path.is_file() else None
        return {
            "index": rep.index,
            "split_seed": rep.split_seed,
            "seed": rep.seed,
            "dir": self._rel(self.root(rep)),
            "n_train": None if split is None else len(split.get("train", [])),
            "n_validation": None
            if split is None
            else len(split.get("validation", split.get("val", []))),
        }

    def trained_on(self, book: StateBook) -> str | None:
        """The device(s) the finished trainings ran on, from their done records."""
        devices = set()
        for rep in self.args.replicate_list():
            for c in self.args.configs:
                step = rep.step(f"train:{c}")
                if book.done(step):
                    done = (book.outputs(step) or {}).get("done") or {}
                    devices.add(done.get("device"))
        devices.discard(None)
        return ", ".join(sorted(devices)) or None

    def _rel(self, path: Path | None) -> str | None:
        """A data root as recorded: relative to the run when inside it (the run can move)."""
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.run.resolve()).as_posix()
        except ValueError:
            return str(Path(path).resolve())

    def progress(self, step: str) -> list[tuple[str, int]]:
        """What a step has saved so far (a training's checkpoint files and their times):
        a requeued cluster job that saved nothing new made no progress
        (`workflows.cluster.UnitCall.checkpoint`)."""
        index, name = parse_step(step)
        kind, _, config = name.partition(":")
        folder = train_dir(self.root(self.replicate(index))) / config
        if kind != "train" or not folder.is_dir():
            return []
        return sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("checkpoint*.pt"))

    # -- steps ---------------------------------------------------------------------------
    def run_step(self, step: str) -> Any:
        index, name = parse_step(step)
        rep = self.replicate(index)
        kind, _, rest = name.partition(":")
        if kind == "data" and index == 0:
            return self.make_data(rest)
        if kind == "overlap" and index == 0:
            return self.find_overlap()
        if kind == "split":
            return self.make_split(rep)
        if kind == "cache":
            return self.prepare_training(rep)
        if kind == "train":
            return self.train(rep, rest)
        if kind == "predict":
            set_name, config = rest.split(":")
            return self.predict(rep, set_name, config)
        if kind == "evaluate":
            set_name, config = rest.split(":")
            return self.evaluate(rep, set_name, config)
        if kind == "report" and index == 0:
            adopt_legacy(report_dir(self.run), "report")  # a run resumed from before manifests
            report_build.write_report(self.run, report_dir(self.run), overwrite=True)
            return [str(report_dir(self.run))]
        raise AssertionError(step)

    def make_data(self, which: str) -> list[str]:
        # the phantom depends on --seed alone, never on a replicate's seeds: made once
        seed = self.args.seed
        adopt_legacy(self.lits if which == "lits" else self.ircadb, "dataset")
        if which == "lits":
            data.write_phantom(
                self.lits,
                "lits",
                PHANTOM_LITS_CASES,
                seed,
                unit_spacing=PHANTOM_IRCADB_INDICES,
                overwrite=True,
            )
            return [str(self.lits)]
        data.write_phantom(
            self.ircadb, "ircadb", seed=seed, indices=list(PHANTOM_IRCADB_INDICES), overwrite=True
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
        out = pred_dir(here, set_name, config)
        stage1 = list_models(stage=1)[0]
        adopt_legacy(out, "predictions")  # a run resumed from before manifests
        written = inference.predict(
            train_dir(here),
            root,
            out,
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
        adopt_legacy(out, "evaluate")  # a run resumed from before manifests
        # every measured number carries its protocol, profile, seeds and split
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
        metrics.evaluate(
            pred_dir(here, set_name, config),
            root,
            out,
            case_ids=case_ids,
            protocol=self.args.protocol,
            progress=False,
            overwrite=True,
            extra_meta={"ablation": record},
        )
        return [str(out / SUMMARY_JSON)]

    def _set(self, rep: Replicate, set_name: str) -> tuple[Path, list[str] | None]:
        if set_name == "lits_val":
            split = self.split(rep)
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
