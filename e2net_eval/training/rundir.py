"""The run directory: one split, a slice cache, and one folder per trained configuration.

::

    RUN/split.json                    the train/validation split every config of the run uses
    RUN/cache/<dataset key>/<case>/   windowed slices (see cache.py)
    RUN/<config>/settings.json        profile, hyper-parameters, seed, device
    RUN/<config>/checkpoint_last.pt   written every epoch (and when a run stops early)
    RUN/<config>/best.pt              weights with the lowest validation loss (used by predict)
    RUN/<config>/metrics.jsonl        one JSON line per epoch
    RUN/<config>/done.json            written once training has stopped (reruns skip it)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from e2net_eval.errors import InputError
from e2net_eval.util.jsonio import dump_json, load_json

#: Stage-2 configurations, most complete first: the default of `predict`.
STAGE2_PREFERENCE = ("dist_dcff", "edge_dcff", "dist", "edge", "baseline")
STAGE1 = "stage1"


def split_lists(split: dict[str, Any], path: str | Path | None = None) -> tuple[list, list]:
    """(train ids, validation ids) of a split dict (``train`` and ``val``/``validation``)."""
    train = split.get("train")
    val = split.get("val", split.get("validation"))
    if not isinstance(train, list) or not isinstance(val, list) or not train or not val:
        raise InputError("a split needs non-empty 'train' and 'val' lists of case ids", path=path)
    overlap = set(map(str, train)) & set(map(str, val))
    if overlap:
        raise InputError(f"cases in both train and val: {sorted(overlap)[:5]}", path=path)
    return [str(c) for c in train], [str(c) for c in val]


def resolve_split(
    run_dir: Path, case_ids: list[str], split_path: str | Path | None, *, seed: int, write: bool
) -> tuple[list[str], list[str]]:
    """The run's split: from `split_path`, else ``RUN/split.json``, else made now.

    A made split is the data layer's paper split (111/20, proportional for other sizes)
    seeded with `seed` (the split seed, independent of the training seed).

    A run has one split: a different `split_path` for an existing run is an input error.
    Only the writing process (`write`) saves ``RUN/split.json``.
    """
    saved = run_dir / "split.json"
    if split_path is not None:
        try:
            split = load_json(split_path)
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read split: {exc}", path=split_path) from exc
        if saved.is_file():
            old = load_json(saved)
            if split_lists(old, saved) != split_lists(split, split_path):
                raise InputError(
                    f"the run already has a different split ({saved})", path=split_path
                )
    elif saved.is_file():
        split = load_json(saved)
    else:
        from e2net_eval.data import make_split

        split = make_split(case_ids, seed)
    train, val = split_lists(split, split_path or saved)
    missing = sorted(set(train + val) - set(case_ids))
    if missing:
        raise InputError(
            f"{len(missing)} split case(s) not in the dataset, e.g. {missing[0]!r}",
            path=split_path or saved,
        )
    if write and not saved.is_file():
        dump_json(saved, split)
    return train, val


def config_dir(run_dir: str | Path, config: str) -> Path:
    return Path(run_dir) / config


def trained_configs(run_dir: str | Path) -> list[str]:
    """Configurations of the run that have weights to predict with."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in run_dir.iterdir()
        if p.is_dir() and ((p / "best.pt").is_file() or (p / "checkpoint_last.pt").is_file())
    )


def default_stage2(run_dir: str | Path) -> str | None:
    """The most complete stage-2 configuration trained in the run, or None."""
    have = set(trained_configs(run_dir))
    return next((c for c in STAGE2_PREFERENCE if c in have), None)


def load_trained(run_dir: str | Path, config: str, device: torch.device) -> torch.nn.Module:
    """Rebuild a configuration's network and load its best weights (else the last ones)."""
    import reference_models

    folder = config_dir(run_dir, config)
    path = folder / "best.pt"
    if not path.is_file():
        path = folder / "checkpoint_last.pt"
    if not path.is_file():
        raise InputError(f"configuration {config!r} has no weights in the run", path=folder)
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if "model_config" in payload:
        cfg = reference_models.ModelConfig.from_dict(payload["model_config"])
        model = reference_models.build_model(cfg)
    else:
        model = reference_models.create_model(payload["config_name"], profile=payload["profile"])
    model.load_state_dict(payload["model"])
    return model.to(device).eval()
