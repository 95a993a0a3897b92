"""Inference stage: two-stage prediction of whole volumes into NIfTI, and its benchmark.

``from e2net_eval.inference import predict`` (imported lazily, so the CLI starts without torch).
"""

from __future__ import annotations

__all__ = ["predict"]


def __getattr__(name: str):
    if name == "predict":
        from e2net_eval.inference.predictor import predict

        return predict
    raise AttributeError(name)
