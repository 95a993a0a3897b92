"""Loading a local Res2Net-50 checkpoint into an encoder (`--backbone-weights PATH`).

The paper names Res2Net-50 as its backbone and does not say how the encoder was initialised
(random or pre-trained); by default we train from random weights, and a user who wants to
start from, e.g., the ImageNet checkpoint of the Res2Net release passes it. Nothing is
downloaded: the user passes a local file of the official Res2Net release or timm's
`res2net50_26w_4s` (same key names). Rules:

- Wrappers: a dict holding the weights under "state_dict" or "model" is unwrapped, and a
  `module.` prefix (DataParallel) is stripped.
- The classifier (`fc.*`) is ignored. Every other checkpoint key must exist in the encoder
  with the same shape, and every encoder key must be in the checkpoint (strict), except
  BatchNorm's `num_batches_tracked` counters, which old checkpoints lack.
- First convolution: the checkpoint's `conv1.weight` is (64, 3, 7, 7) for RGB. For an
  encoder with k input channels (k = context, one CT slice per channel) the RGB kernels are
  summed over the input channels (a grey image fed as R = G = B gives the same response)
  and divided equally among the k channels, so a stack of k identical slices reproduces that
  response too: w_k[:, c] = sum_rgb(w) / k for c = 1..k.
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
