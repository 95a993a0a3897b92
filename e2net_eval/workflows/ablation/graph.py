"""The ablation as a graph of typed steps (`Step`), each a `workflows.jobs.Job` by name."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from e2net_eval.data.split import PAPER_TOTAL, PAPER_VALIDATION
from e2net_eval.workflows.ablation.args import (
    PHANTOM_IRCADB_INDICES,
    PHANTOM_LITS_CASES,
    PHANTOM_N_VAL,
    AblationArgs,
    Replicate,
)
from e2net_eval.workflows.jobs import Job
from reference_models.registry import get_model, stage1_name

#: Relative seconds of the other steps, per case (phantom generation, prediction,
#: evaluation; training costs come from the catalogue's `step_cost`): only to start the
#: longest chains first when steps run in parallel.
CASE_COST = {"data": 0.3, "predict": 0.5, "evaluate": 0.1}
#: 3DIRCADb's patients (the real set's size; the LiTS sizes are the paper's split).
REAL_IRCADB_CASES = 20

_REPLICATE = re.compile(r"rep(\d+):(.+)")


@dataclass(frozen=True)
class Step:
    """One step: its kind (data, overlap, split, cache, train, predict, evaluate, report),
    the set it reads (data: ``lits``/``ircadb``; predict, evaluate: ``lits_val``/``ircadb``),
    the configuration (train, predict, evaluate) and the replicate."""

    kind: str
    set: str | None = None
    config: str | None = None
    replicate: int = 0

    @property
    def name(self) -> str:
        """The step's key in RUN/ablation_state.json (``rep2:predict:ircadb:dist``):
        ``rep<r>:`` only for replicates r >= 1, so replicate 0 keeps the plain names."""
        parts = [p for p in (self.kind, self.set, self.config) if p is not None]
        return ("" if self.replicate == 0 else f"rep{self.replicate}:") + ":".join(parts)

    @classmethod
    def parse(cls, name: str) -> Step:
        """The step a `name` names (the inverse of `Step.name`)."""
        hit = _REPLICATE.fullmatch(name)
        replicate, rest = (int(hit.group(1)), hit.group(2)) if hit else (0, name)
        kind, *parts = rest.split(":")
        if kind in ("predict", "evaluate"):
            return cls(kind, parts[0], parts[1], replicate)
        if kind == "train":
            return cls(kind, config=parts[0], replicate=replicate)
        return cls(kind, parts[0] if parts else None, replicate=replicate)


def step_kind(name: str) -> str:
    """A step's kind in any replicate: what the cluster launcher groups jobs by."""
    return Step.parse(name).kind


def job_graph(args: AblationArgs) -> list[Job]:
    """Every step with its dependencies in one-worker order: data, each replicate's, report."""
    n_lits = PHANTOM_LITS_CASES if args.phantom else PAPER_TOTAL
    n_ircadb = len(PHANTOM_IRCADB_INDICES) if args.phantom else REAL_IRCADB_CASES
    sets = {"lits_val": PHANTOM_N_VAL if args.phantom else PAPER_VALIDATION}
    jobs: list[Job] = []
    made: tuple[str, ...] = ()
    if args.phantom:
        made = (Step("data", "lits").name, Step("data", "ircadb").name)
        jobs.append(Job(made[0], (), CASE_COST["data"] * n_lits))
        jobs.append(Job(made[1], (), 2 * CASE_COST["data"] * n_ircadb))
    split_deps = made
    if args.has_ircadb:
        sets["ircadb"] = n_ircadb
        jobs.append(Job(Step("overlap").name, made, 1.0))
        split_deps = (Step("overlap").name,)
    for rep in args.replicate_list():
        jobs += _replicate_jobs(args, rep, split_deps, sets, n_lits)
    evaluations = tuple(j.name for j in jobs if step_kind(j.name) == "evaluate")
    jobs.append(Job(Step("report").name, evaluations, 3.0))
    return _chain_costs(jobs)


def _replicate_jobs(
    args: AblationArgs,
    rep: Replicate,
    split_deps: tuple[str, ...],
    sets: dict[str, int],
    n_lits: int,
) -> list[Job]:
    """One replicate's steps from its split to its evaluations (`sets`: cases per set)."""

    def at(kind: str, set_name: str | None = None, config: str | None = None) -> str:
        return Step(kind, set_name, config, rep.index).name

    jobs = [Job(at("split"), split_deps, 0.1)]
    if rep.index == 0:
        jobs.append(Job(at("cache"), (at("split"),), 0.05 * n_lits))
    else:  # replicate 0's cache holds every case: only the split is written
        jobs.append(Job(at("cache"), (at("split"), Step("cache").name), 0.005 * n_lits))
    for c in args.configs:
        cost = get_model(c).step_cost * (args.steps_for(c) or 100_000) / 100
        jobs.append(Job(at("train", config=c), (at("cache"),), cost))
    stage1 = stage1_name()
    for set_name, n in sets.items():
        for c in args.configs:
            deps = (at("train", config=c),)
            if c != stage1:  # stage 2 predicts inside stage 1's liver
                deps += (at("predict", set_name, stage1),)
            jobs.append(Job(at("predict", set_name, c), deps, CASE_COST["predict"] * n))
    for set_name, n in sets.items():
        for c in args.configs:
            deps = (at("predict", set_name, c),)
            jobs.append(Job(at("evaluate", set_name, c), deps, CASE_COST["evaluate"] * n))
    return jobs


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
    return [j.name for j in job_graph(args)]


def finished_steps(jobs: list[Job], marked: Callable[[str], bool]) -> list[str]:
    """The steps to skip: marked done, and every dependency among them too (in dependency
    order); a done step with a dependency not done (a replicate added) is stale."""
    done: set[str] = set()
    for job in jobs:  # the plan is in dependency order
        if marked(job.name) and all(d in done for d in job.deps):
            done.add(job.name)
    return [j.name for j in jobs if j.name in done]
