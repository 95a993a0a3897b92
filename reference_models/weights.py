"""Loading a local Res2Net-50 checkpoint into an encoder (`--backbone-weights PATH`).

Nothing is downloaded. Wrappers ("state_dict", "model", a `module.` prefix) are removed, the
classifier (`fc.*`) is ignored, every other key must match the encoder strictly (BatchNorm's
`num_batches_tracked` may be missing), and the RGB stem (O, 3, kh, kw) becomes (O, k, kh, kw)
for k input slices: summed over RGB and split equally, w_k[:, c] = sum_rgb(w) / k. Why:
docs/models.md ("Pre-trained encoder weights").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model")
_IGNORED_PREFIXES = ("fc.",)
_OPTIONAL_SUFFIX = "num_batches_tracked"


def _unwrap(obj: object) -> dict[str, torch.Tensor]:
    """Checkpoint object -> flat {key: tensor} without wrapper or `module.` prefix."""
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint is a {type(obj).__name__}, not a state dict")
    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    return out


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB stem kernels (O, 3, kh, kw) -> (O, in_channels, kh, kw): sum over RGB, split equally."""
    if weight.shape[1] == in_channels:
        return weight
    grey = weight.sum(dim=1, keepdim=True)
    return grey.repeat(1, in_channels, 1, 1) / in_channels


def load_backbone_weights(
    encoder: nn.Module, source: str | Path | Mapping[str, torch.Tensor]
) -> list[str]:
    """Load a Res2Net checkpoint (path or state dict) into `encoder`, strictly.

    Returns the checkpoint keys that were ignored (the classifier). Raises ValueError naming
    the keys on any missing, unexpected or mis-shaped entry.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{path}: backbone checkpoint not found")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt or not a torch file
            raise ValueError(f"{path}: cannot read checkpoint: {exc}") from exc
    else:
        obj = source
    ckpt = _unwrap(obj)
    ignored = sorted(k for k in ckpt if k.startswith(_IGNORED_PREFIXES))
    ckpt = {k: v for k, v in ckpt.items() if not k.startswith(_IGNORED_PREFIXES)}
    own = encoder.state_dict()
    missing = [k for k in own if k not in ckpt and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in ckpt if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"backbone checkpoint does not match the encoder: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''} ({len(missing)}), unexpected "
            f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''} ({len(unexpected)})"
        )
    stem, own_stem = ckpt.get("conv1.weight"), own.get("conv1.weight")
    if stem is not None and own_stem is not None and stem.ndim == own_stem.ndim == 4:
        # only a stem of the right kind is adapted; anything else is named as mis-shaped below
        ckpt["conv1.weight"] = adapt_first_conv(stem, own_stem.shape[1])
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}"
        for k, v in ckpt.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if wrong:
        raise ValueError(f"backbone checkpoint shapes differ: {'; '.join(wrong[:5])}")
    encoder.load_state_dict(ckpt, strict=False)
    log.info("loaded %d backbone tensors (ignored %d)", len(ckpt), len(ignored))
    return ignored
