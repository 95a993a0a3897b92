"""Test hook (on PYTHONPATH of cluster jobs only): interrupt one configuration's training in
the middle of an epoch, once, as a node failure (SIGKILL) or a preemption (SIGUSR2, which
submitit turns into checkpoint + requeue) would.

E2NET_TEST_INTERRUPT="<config>:<epoch>:<step in epoch>:<KILL|USR2>:<marker file>[;...]":
after that optimiser step, rank 0 of that training signals itself, unless the marker file
exists (so the resumed training runs to its end). Instead of a signal: SLEEP (600 s, once:
the test scancels or requeues the job meanwhile), HANG (every attempt: a time limit too
short for a checkpoint), RAISE (a ValueError, once: a failing job). Patches `Trainer.step` when the trainer
module is imported; processes without the variable are untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

_SPEC = os.environ.get("E2NET_TEST_INTERRUPT")
_TARGET = "e2net_eval.training.trainer"
#: Actions besides a signal name: SLEEP (once, 600 s), HANG (every time), RAISE (once).
_ACTIONS = ("SLEEP", "HANG", "RAISE")


def _patch(module) -> None:
    rules = []
    for item in _SPEC.split(";"):
        config, epoch, step, sig, marker = item.split(":", 4)
        action = sig if sig in _ACTIONS else getattr(signal, "SIG" + sig)
        rules.append((config, int(epoch), int(step), action, Path(marker)))
    original = module.Trainer.step

    def step(self, batch):
        loss = original(self, batch)
        for config, epoch, at, sig, marker in rules:
            hit = self.job.config == config and (self.epoch, self.step_in_epoch + 1) == (epoch, at)
            if hit and self.info.is_main and sig == "HANG":
                time.sleep(3600)  # every attempt: never gets to a checkpoint
            if hit and self.info.is_main and not marker.exists():
                marker.write_text(f"{os.getpid()} step {self.global_step + 1}")
                if sig == "SLEEP":  # once: the test acts on the running job meanwhile
                    time.sleep(600)
                elif sig == "RAISE":
                    raise ValueError(f"injected failure in {config}")
                else:
                    os.kill(os.getpid(), sig)
        return loss

    module.Trainer.step = step


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def patched(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = patched
        return spec


if _SPEC:
    sys.meta_path.insert(0, _Finder())
