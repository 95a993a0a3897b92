"""Random mask pairs on anisotropic grids, shared by the agreement tests with outside tools."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def random_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two non-empty boolean masks (pred, ref) in a random small volume.

    Kinds: a smooth blob and a perturbed copy; independent random blobs; scattered specks
    touching the array border.
    """
    shape = tuple(int(v) for v in rng.integers(8, 36, size=3))
    kind = rng.integers(0, 3)
    if kind == 0:  # blob and a perturbed copy
        base = ndimage.gaussian_filter(rng.random(shape), 2.0)
        thr = np.quantile(base, rng.uniform(0.5, 0.9))
        ref = base > thr
        pred = (base + rng.normal(0, 0.01, shape)) > thr * rng.uniform(0.98, 1.02)
    elif kind == 1:  # independent random blobs
        ref = ndimage.binary_dilation(rng.random(shape) > 0.97, iterations=int(rng.integers(1, 3)))
        pred = ndimage.binary_dilation(rng.random(shape) > 0.97, iterations=int(rng.integers(1, 3)))
    else:  # scattered specks touching the borders
        ref = rng.random(shape) > 0.8
        pred = rng.random(shape) > 0.85
    ref[0, 0, 0] = True  # never empty
    pred[-1, -1, -1] = True
    return pred, ref


def random_spacing(rng: np.random.Generator) -> tuple[float, float, float]:
    """Anisotropic voxel size in mm, each axis in [0.3, 3.0)."""
    return tuple(float(v) for v in rng.uniform(0.3, 3.0, size=3))


def random_lesions(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Tumour-like masks (pred, ref): several ellipsoids and a perturbed prediction.

    The prediction keeps, shifts, grows, shrinks, splits or misses each reference lesion
    and adds false ones, so matches at IoU > 0.5 and failures both occur; lesions may
    touch and merge. Either mask may be empty.
    """
    shape = tuple(int(v) for v in rng.integers(24, 48, size=3))
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]

    def ellipsoid(centre, radii):
        return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True)) <= 1

    for _ in range(int(rng.integers(0, 7))):
        centre = rng.uniform(0, shape)
        radii = rng.uniform(1.5, 6.0, size=3)
        ref |= ellipsoid(centre, radii)
        fate = rng.integers(0, 6)
        if fate == 0:  # missed
            continue
        if fate == 1:  # split into two halves with a gap
            half = ellipsoid(centre, radii)
            cut = int(centre[0])
            pred[: max(cut - 1, 0)] |= half[: max(cut - 1, 0)]
            pred[cut + 1 :] |= half[cut + 1 :]
            continue
        close = fate < 5  # mostly a fair segmentation, sometimes a poor one
        shift = rng.normal(0, 0.08 if close else 0.8, size=3)
        scale = rng.uniform(0.85, 1.15, size=3) if close else rng.uniform(0.5, 1.5, size=3)
        pred |= ellipsoid(centre + shift * radii, radii * scale)
    for _ in range(int(rng.integers(0, 3))):  # false lesions
        pred |= ellipsoid(rng.uniform(0, shape), rng.uniform(0.8, 3.0, size=3))
    if rng.random() < 0.2:  # scattered specks: many one-voxel lesions
        pred |= rng.random(shape) > 0.998
    return pred, ref


def random_labels(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Label volumes (pred, ref), 0/1/2 uint8: a liver blob and a perturbed copy, with
    tumour-like lesions (`random_lesions`) inside each liver. Either may lack tumour."""
    les_pred, les_ref = random_lesions(rng)
    shape = les_ref.shape
    base = ndimage.gaussian_filter(rng.random(shape), 3.0)
    thr = np.quantile(base, rng.uniform(0.3, 0.6))
    ref = (base > thr).astype(np.uint8)
    noisy = base + ndimage.gaussian_filter(rng.normal(0, 0.02, shape), 2.0)
    pred = (noisy > thr * rng.uniform(0.99, 1.01)).astype(np.uint8)
    ref[les_ref & (ref == 1)] = 2
    pred[les_pred & (pred == 1)] = 2
    return pred, ref
