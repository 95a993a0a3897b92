"""e2net-eval: evaluation and benchmarking harness for liver and liver-tumour segmentation on CT."""

from __future__ import annotations

__version__ = "0.1.0"
