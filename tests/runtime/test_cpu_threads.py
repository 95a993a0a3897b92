"""CPU thread policy: one thread for the small profile unless the user set OMP_NUM_THREADS."""

from __future__ import annotations

import torch

from e2net_eval.runtime.device import configure_cpu_threads


def test_small_profile_uses_one_thread_unless_user_set(monkeypatch):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert configure_cpu_threads(torch.device("cpu"), "small") == 2  # the user decides
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert configure_cpu_threads(torch.device("cpu"), "small") == 1
        torch.set_num_threads(2)
        assert configure_cpu_threads(torch.device("cpu"), "paper") == 2  # torch's default kept
    finally:
        torch.set_num_threads(before)
