"""RUN/ablation_state.json: which steps of a run have finished, and with which arguments.

A step is written here only after it finished, so the file is the truth for resuming;
the arguments ("fingerprint") guard a run folder against being reused with other ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.rundir import STATE_JSON
from e2net_eval.util.jsonio import dump_json, load_json


class StateBook:
    """RUN/ablation_state.json: the arguments and every finished step with its outputs."""

    def __init__(
        self,
        run: Path,
        fingerprint: dict[str, Any],
        extends: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None,
    ):
        """`extends(recorded, fingerprint)`: True when other arguments may take the run over
        (they only add to it); the state then records `fingerprint` from now on."""
        self.path = run / STATE_JSON
        if self.path.is_file():
            try:
                state = load_json(self.path)
            except ValueError as exc:
                raise InputError(f"corrupt state file: {exc}", path=self.path) from exc
            recorded = state.get("args")
            extendable = isinstance(recorded, dict) and extends is not None
            if recorded != fingerprint and extendable and extends(recorded, fingerprint):
                state["args"] = fingerprint
                dump_json(self.path, state)
            if state.get("args") != fingerprint:
                old_args = state.get("args") or {}
                diff = sorted(
                    k for k in {*fingerprint, *old_args} if old_args.get(k) != fingerprint.get(k)
                )
                raise InputError(
                    f"this run directory was started with other arguments ({', '.join(diff)}); "
                    "use another -o folder or the original arguments",
                    path=run,
                )
            self.state = state
        else:
            self.state = {"args": fingerprint, "steps": {}}
            self._save()

    def done(self, step: str) -> bool:
        return bool(self.state["steps"].get(step, {}).get("done"))

    def outputs(self, step: str) -> Any:
        return self.state["steps"][step].get("outputs")

    def mark(
        self, step: str, outputs: Any, seconds: float, device: str, job: str | None = None
    ) -> None:
        """`step` finished (`job`: the cluster job it ran in, if any)."""
        record = {
            "done": True,
            "outputs": outputs,
            "seconds": round(seconds, 2),
            "device": device,
        }
        if job is not None:
            record["job"] = job
        self.state["steps"][step] = record
        self._save()

    # -- cluster jobs (workflows/launch/cluster.py): one record per unit, the latest job ---
    def job(self, unit: str) -> dict[str, Any] | None:
        """The latest cluster job of `unit`: job_id, status (submitted | finished |
        failed), the scheduler's state, log paths, steps, attempts, earlier jobs."""
        return self.state.get("jobs", {}).get(unit)

    def jobs(self) -> dict[str, dict[str, Any]]:
        return dict(self.state.get("jobs", {}))

    def record_job(self, unit: str, record: dict[str, Any]) -> None:
        self.state.setdefault("jobs", {})[unit] = record
        self._save()

    def _save(self) -> None:
        dump_json(self.path, self.state)
