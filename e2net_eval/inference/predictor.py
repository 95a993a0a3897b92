"""Two-stage prediction of whole CT volumes, written as NIfTI on the reference grid.

Window and reorient the volume on the model's device; stage 1 on every whole slice (padded
like the training crops, `pad_batch_like_crops`), sigmoid > 0.5 is liver; per slice with
liver, its box grown by `STAGE2_MARGIN_PX` (scaled with the profile), resized to the stage-2
input, stage 2, probabilities pasted back; liver = p_liver > 0.5, tumour = p_tumour > 0.5
inside it. Optionally the largest 3D liver component only. Labels back in stored order, as
uint8 with the reference's shape and affine; with only ``stage1``, liver alone. The steps
and their reasons: docs/training.md ("Inference pipeline").
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from e2net_eval.data.case import Case
from e2net_eval.data.dataset import Dataset, open_dataset
from e2net_eval.data.nifti import write_nifti
from e2net_eval.data.preprocess import HU_MAX, HU_MIN
from e2net_eval.errors import InputError
from e2net_eval.rundir import default_stage2, trained_configs
from e2net_eval.runtime.device import autocast, configure_cpu_threads, memory_format, resolve_device
from e2net_eval.runtime.geometry import (
    crop_resize,
    grow_box,
    pad_batch_like_crops,
    paste_back,
    scaled_pixels,
    slice_boxes,
)
from e2net_eval.runtime.orientation import (
    Orientation,
    canonical_tensor,
    context_indices,
    stored_tensor,
)
from e2net_eval.runtime.weights import load_trained
from e2net_eval.util.faults import fault_point
from e2net_eval.util.imports import import_nibabel
from e2net_eval.util.jsonio import dump_json
from e2net_eval.util.meta import run_meta
from e2net_eval.util.outdir import result_folder
from reference_models.blocks import STRIDE
from reference_models.registry import stage1_name

nib = import_nibabel()

#: Stage-2 inference margin at 256x256: the mean of the paper's random 10..60 pixels.
STAGE2_MARGIN_PX = 35


def largest_component(mask: torch.Tensor) -> torch.Tensor:
    """Keep the largest 26-connected 3D component of a boolean volume (on its device)."""
    import cc3d

    arr = mask.cpu().numpy()
    if not arr.any():
        return mask
    labels = cc3d.connected_components(arr.astype(np.uint8), connectivity=26)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return torch.from_numpy(labels == int(np.argmax(counts))).to(mask.device)


def window_tensor(volume: torch.Tensor) -> torch.Tensor:
    """The data layer's `window_hu` in torch (same float32 operations, bit-identical)."""
    t = volume.float().clamp(HU_MIN, HU_MAX)  # out of place: the caller's array is untouched
    t.sub_(float(np.float32((HU_MIN + HU_MAX) / 2)))
    return t.mul_(float(np.float32(2.0 / (HU_MAX - HU_MIN))))


def prepare_slices(image: np.ndarray, orient: Orientation, device: torch.device) -> torch.Tensor:
    """Stored HU volume -> ``(Z, X, Y)`` float32 windowed canonical slices on `device`.

    The volume goes to the device as stored (int16 stays int16: half the transfer), and the
    window, flips and transposition run there.
    """
    arr = np.asarray(image)
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous) or any(st < 0 for st in arr.strides):
        arr = np.ascontiguousarray(arr)
    if arr.dtype not in (np.int16, np.float32, np.float64, np.uint8, np.int32):
        arr = arr.astype(np.float32)
    with warnings.catch_warnings():  # read-only memory maps: torch only reads them here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        volume = torch.from_numpy(arr)
    return canonical_tensor(orient, window_tensor(volume.to(device)))


def _stacks(slices: torch.Tensor, zs: list[int], channels: int) -> torch.Tensor:
    """``(B, C, X, Y)`` context stacks of slices `zs` from ``(Z, X, Y)``."""
    n = slices.shape[0]
    index = torch.tensor([context_indices(z, n, channels) for z in zs], device=slices.device)
    return slices[index]


def _forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Sigmoid of the model's ``seg`` logits (float32, on the input's device); the device's
    precision and memory format policy (runtime/device.py)."""
    x = x.contiguous(memory_format=memory_format(x.device))
    with autocast(x.device):
        seg = model(x)["seg"]
    return torch.sigmoid(seg.float())


@torch.no_grad()
def stage1_liver(model, slices: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """``(Z, X, Y)`` windowed slices -> ``(Z, X, Y)`` bool liver of stage 1 (whole slices).

    Slices are padded with -1 to a size congruent to the training crop modulo 32 (see
    `pad_batch_like_crops`): fed as is, a 128x128 slice to a network trained on 112 crops
    got a band of false liver along its last rows.
    """
    out = torch.zeros(slices.shape, dtype=torch.bool, device=slices.device)
    for z0 in range(0, slices.shape[0], batch_size):
        zs = list(range(z0, min(z0 + batch_size, slices.shape[0])))
        stacks = _stacks(slices, zs, model.in_channels)
        x, (h, w) = pad_batch_like_crops(stacks, model.config.input_size, STRIDE)
        out[z0 : zs[-1] + 1] = _forward(model, x)[:, 0, :h, :w] > 0.5
    return out


@torch.no_grad()
def stage2_labels(model, slices: torch.Tensor, liver: torch.Tensor, batch_size: int = 16):
    """Refine liver and find tumour inside each slice's stage-1 liver box -> uint8 labels.

    ``(Z, X, Y)`` slices and stage-1 liver -> ``(Z, X, Y)`` uint8 0/1/2 (same device).
    """
    size = model.config.input_size
    margin = scaled_pixels(STAGE2_MARGIN_PX, size)
    shape = tuple(slices.shape[1:])
    labels = torch.zeros(slices.shape, dtype=torch.uint8, device=slices.device)
    jobs = [
        (z, grow_box(box, (margin,) * 4, shape))
        for z, box in enumerate(slice_boxes(liver))
        if box is not None
    ]
    for j0 in range(0, len(jobs), batch_size):
        chunk = jobs[j0 : j0 + batch_size]
        stacks = _stacks(slices, [z for z, _ in chunk], model.in_channels)
        x = torch.stack(
            [
                crop_resize(s, box, size, mode="bilinear")
                for s, (_, box) in zip(stacks, chunk, strict=True)
            ]
        )
        prob = _forward(model, x)
        for p, (z, box) in zip(prob, chunk, strict=True):
            full = paste_back(p, box, shape)
            liv = full[0] > 0.5
            labels[z] = liv.to(torch.uint8) + ((full[1] > 0.5) & liv).to(torch.uint8)
    return labels


def predict_volume(
    image: np.ndarray,
    affine: np.ndarray,
    stage1: torch.nn.Module,
    stage2: torch.nn.Module | None = None,
    *,
    device: torch.device | None = None,
    batch_size: int = 16,
    keep_largest: bool = False,
    stage1_liver_mask: np.ndarray | None = None,
) -> np.ndarray:
    """HU volume in stored order ``(A, B, C)`` -> uint8 label volume of the same shape/order.

    `stage1_liver_mask` (stored order, bool) is stage 1's liver when it was predicted
    before (this case's stage-1 prediction): stage 1 is then not run again.
    """
    device = device or torch.device("cpu")
    orient = Orientation.from_affine(affine)
    slices = prepare_slices(image, orient, device)
    if stage1_liver_mask is None:
        liver = stage1_liver(stage1, slices, batch_size)
    else:
        mask = torch.from_numpy(np.ascontiguousarray(stage1_liver_mask, dtype=bool))
        liver = canonical_tensor(orient, mask.to(device))
    if keep_largest:
        liver = largest_component(liver)
    if stage2 is None:
        labels = liver.to(torch.uint8)
    else:
        labels = stage2_labels(stage2, slices, liver, batch_size)
        if keep_largest:
            labels[~largest_component(labels >= 1)] = 0
    return stored_tensor(orient, labels).cpu().numpy()


def read_stage1_mask(folder: Path, case_id: str, shape: tuple[int, ...]) -> np.ndarray:
    """Stage 1's liver of a case from its stage-1 prediction file (stored order, bool)."""
    path = folder / f"{case_id}.nii.gz"
    if not path.is_file():
        raise InputError("stage-1 prediction missing", case=case_id, path=path)
    mask = np.asarray(nib.load(str(path)).dataobj) >= 1
    if mask.shape != tuple(shape):
        raise InputError(
            f"stage-1 prediction shape {mask.shape} != image shape {tuple(shape)}",
            case=case_id,
            path=path,
        )
    return mask


@dataclass(frozen=True)
class PredictOptions:
    """The keywords of `predict`: which stage 2, which cases, where and how."""

    config: str | None = None
    case_ids: list[str] | None = None
    device: str = "auto"
    largest_component: bool = False
    batch_size: int = 16
    progress: bool = True
    stage1_dir: str | Path | None = None
    overwrite: bool = False


def predict(
    run_dir: str | Path, data_root: str | Path, out_dir: str | Path, **options: Any
) -> list[Path]:
    """Predict every case (or `case_ids`, each once) of `data_root` into
    ``out_dir/<case_id>.nii.gz``; the written paths. `options` are `PredictOptions` fields:
    `config` the stage-2 configuration (default: the most complete one in the run; the
    stage-1 one for liver only); `stage1_dir` this run's stage-1 predictions of the same
    cases, whose liver is used instead of running stage 1 again (the same result).

    `out_dir` is a result folder (`util.outdir`): the whole set (every case and
    ``predict.json``) is swapped in at the end, so a failure leaves the previous set; a
    non-empty `out_dir` only with `overwrite`, and only a prediction set e2net-eval wrote.
    """
    run_dir, out_dir, opt = Path(run_dir), Path(out_dir), PredictOptions(**options)
    config = _stage2_config(run_dir, opt.config)
    dev = resolve_device(opt.device)
    stage1 = load_trained(run_dir, stage1_name(), dev)
    configure_cpu_threads(dev, stage1.config.profile)
    stage2 = load_trained(run_dir, config, dev) if config not in (None, stage1_name()) else None
    dataset = open_dataset(data_root)
    ids = _case_ids(dataset, opt.case_ids, data_root)
    written, seconds = [], {}
    inputs = [run_dir, data_root] + ([] if opt.stage1_dir is None else [opt.stage1_dir])
    with result_folder(out_dir, kind="predictions", inputs=inputs, overwrite=opt.overwrite) as tmp:
        for cid in tqdm(ids, desc="predict", unit="case", disable=not opt.progress):
            fault_point("predict.case")
            case = dataset.load(cid, image=True, label=False)
            seconds[cid] = _predict_case(case, tmp, (stage1, stage2), dev, opt)
            written.append(out_dir / f"{cid}.nii.gz")
        dump_json(
            tmp / "predict.json",
            {
                "run": str(run_dir),
                "data_root": str(data_root),
                "stage2": config if stage2 is not None else None,
                "stage1_from": None if opt.stage1_dir is None else str(opt.stage1_dir),
                "largest_component": opt.largest_component,
                "device": str(dev),
                "seconds_per_case": seconds,
                "meta": run_meta(device=str(dev)),
            },
        )
    return written


def _stage2_config(run_dir: Path, config: str | None) -> str | None:
    """The configuration `predict` runs after stage 1 (None or the stage-1 one: liver only);
    an input error when the run lacks it or stage 1."""
    have, first = trained_configs(run_dir), stage1_name()
    if first not in have:
        raise InputError(f"the run has no trained {first} (train it first)", path=run_dir)
    if config is None:
        return default_stage2(run_dir)
    if config != first and config not in have:
        raise InputError(
            f"configuration {config!r} is not trained in the run ({have})", path=run_dir
        )
    return config


def _case_ids(dataset: Dataset, case_ids: list[str] | None, data_root: str | Path) -> list[str]:
    """`case_ids` (each once, in order), or every case of `dataset`; an input error for an
    id the dataset does not have."""
    all_ids = list(dataset.case_ids())
    ids = list(dict.fromkeys(str(c) for c in case_ids)) if case_ids else all_ids
    unknown = [c for c in ids if c not in set(all_ids)]
    if unknown:
        raise InputError(f"case(s) not in the dataset: {unknown[:5]}", path=data_root)
    return ids


def _predict_case(
    case: Case, folder: Path, models: tuple, dev: torch.device, opt: PredictOptions
) -> float:
    """Predict one case with `models` (stage 1, stage 2 or None) into
    ``folder/<case_id>.nii.gz``; the seconds the prediction took."""
    liver = None
    if opt.stage1_dir is not None:
        liver = read_stage1_mask(Path(opt.stage1_dir), case.case_id, case.image.shape)
    t0 = time.perf_counter()
    labels = predict_volume(
        case.image,
        case.affine,
        *models,
        device=dev,
        batch_size=opt.batch_size,
        keep_largest=opt.largest_component,
        stage1_liver_mask=liver,
    )
    seconds = time.perf_counter() - t0
    write_nifti(
        folder / f"{case.case_id}.nii.gz",
        np.asarray(labels, dtype=np.uint8),
        np.asarray(case.affine, dtype=np.float64),
        units=False,
    )
    return seconds
