"""Where the steps of a job graph run: the `Launcher` interface and the launcher names.

A launcher runs a `Work` (the graph, what is done already, the step function and the
orchestrator's callbacks) to its end. ``local`` (`launch.local`), ``slurm`` and
``submitit-local`` (`launch.cluster`) are built by `choose.make_launcher`. A new launcher
is a `Launcher` subclass and its name here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2net_eval.workflows.jobs import Job

LOCAL, SLURM, SUBMITIT_LOCAL = "local", "slurm", "submitit-local"
#: Every launcher name (the CLI's choices).
LAUNCHERS = (LOCAL, SLURM, SUBMITIT_LOCAL)


@dataclass
class Work:
    """A job graph to run and what the orchestrating process does with its results."""

    jobs: list[Job]
    done: list[str]  # steps to skip (finished before)
    execute: Callable[[Any, str], Any]  # a module-level function: picklable
    spec: Any  # what every step needs (picklable)
    book: Any  # `workflows.state.StateBook`: the steps and cluster job records
    run: Path
    threads: int | None  # torch threads of each worker or job
    mark: Callable[[str, Any, float, str | None], None]  # (step, outputs, seconds, job id)
    announce: Callable[[str], None]  # the run's header, given where the steps run
    echo: Callable[[str], None]
    kind_of: Callable[[str], str]  # a step name's kind (`launch.units` groups by it)


class Launcher:
    """Runs a `Work`; `check` before any work is done, `run` to the end."""

    name: str
    #: The steps run elsewhere (the compute nodes): the run records the launcher and the
    #: devices of the trainings rather than this machine's.
    remote = False

    def check(self) -> None:
        """Refuse (InputError) what cannot run, before any work."""

    def run(self, work: Work) -> None:
        raise NotImplementedError
