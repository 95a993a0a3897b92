"""The step graph grouped into *units*, one cluster job each (docs/cluster.md, "What runs
as which job"). Units are made from each step's kind (``kind_of``, which skips a replicate's
``rep<r>:`` prefix) and the graph alone: a predict step belongs with the train step it
depends on, an evaluate step with its predict step.
"""

from __future__ import annotations

from collections.abc import Callable

from e2net_eval.workflows.jobs import Job

#: Step kinds that run together in the first job (data generation, overlap, split, cache).
PREPARE_KINDS = ("data", "overlap", "split", "cache")
PREPARE_UNIT = "prepare"


def kind(step: str) -> str:
    """A step's kind when its name starts with it (``train:dist`` -> ``train``)."""
    return step.partition(":")[0]


def unit_of(job: Job, assigned: dict[str, str], kind_of: Callable[[str], str] = kind) -> str:
    """The unit (cluster job) of a step, given the units of the steps before it."""
    k = kind_of(job.name)
    if k in PREPARE_KINDS:
        return PREPARE_UNIT
    if k == "train":
        return job.name
    if k in ("predict", "evaluate"):
        trained = [d for d in job.deps if kind_of(d) == "train"]
        if trained:  # a prediction goes with the training it needs: train -> score
            parts = trained[0].split(":")
            parts[parts.index("train")] = "score"
            return ":".join(parts)
        scored = [assigned[d] for d in job.deps if kind_of(d) in ("predict", "evaluate")]
        if scored:  # an evaluation with its prediction
            return scored[0]
    return job.name


def unit_kind(members: list[str], kind_of: Callable[[str], str] = kind) -> str:
    """What a unit's job needs: ``train`` (GPUs, DDP), ``score`` (one GPU) or ``cpu``."""
    kinds = {kind_of(s) for s in members}
    if "train" in kinds:
        return "train"
    return "score" if "predict" in kinds else "cpu"


def group_units(
    jobs: list[Job], kind_of: Callable[[str], str] = kind
) -> tuple[list[Job], dict[str, list[str]]]:
    """The unit graph (a `Job` per unit, cost its longest member chain) and each unit's steps."""
    assigned: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for job in jobs:  # in dependency order
        unit = unit_of(job, assigned, kind_of)
        assigned[job.name] = unit
        members.setdefault(unit, []).append(job.name)
    deps: dict[str, list[str]] = {u: [] for u in members}
    cost: dict[str, float] = dict.fromkeys(members, 0.0)
    for job in jobs:
        unit = assigned[job.name]
        cost[unit] = max(cost[unit], job.cost)
        for d in job.deps:
            if assigned[d] != unit and assigned[d] not in deps[unit]:
                deps[unit].append(assigned[d])
    return [Job(u, tuple(deps[u]), cost[u]) for u in members], members
