"""The ``local`` launcher: the steps in worker processes of this machine (`workflows.jobs`)."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from e2net_eval.errors import InputError
from e2net_eval.workflows.jobs import available_cores, local_pool, resolved_device, run_jobs
from e2net_eval.workflows.launch.base import LOCAL, Launcher, Work
from e2net_eval.workflows.launch.cluster import in_flight


def default_workers(profile: Any, device: str) -> int:
    """Worker processes: one per CPU core for the small profile on the CPU, else one (a
    GPU, or the paper profile's multi-threaded convolutions, already fill the machine)."""
    if resolved_device(device) != "cpu" or profile.name != "small":
        return 1
    return available_cores()


class LocalLauncher(Launcher):
    """`workers` processes (None: `default_workers`), a progress bar, one line per step."""

    name = LOCAL

    def __init__(self, profile: Any, device: str, workers: int | None):
        self.profile, self.device, self.workers = profile, device, workers

    def run(self, work: Work) -> None:
        elsewhere = in_flight(work.book)
        if elsewhere:  # must not train a configuration a cluster job may be training
            raise InputError(
                f"cluster jobs of this run may still be running: {', '.join(elsewhere)}; rerun "
                "with the launcher that submitted them",
                path=work.run,
            )
        jobs, done = work.jobs, work.done
        workers = self.workers or default_workers(self.profile, self.device)
        workers = max(1, min(workers, len(jobs) - len(done)))
        work.announce(f"{workers} worker(s)")
        order = [j.name for j in jobs]
        bar = tqdm(total=len(jobs), initial=len(done), desc="ablation", unit="step", disable=None)

        def started(name: str) -> None:
            bar.set_postfix_str(name)
            work.echo(f"[{order.index(name) + 1}/{len(jobs)}] {name}")

        def finished(name: str, outputs: Any, seconds: float) -> None:
            work.mark(name, outputs, seconds, None)
            bar.update(1)

        with bar:
            pool = local_pool(work.execute, work.spec, workers, work.threads)
            run_jobs(jobs, pool, done=done, on_start=started, on_done=finished)
