"""Liver lesions and CT noise for the phantom (`anatomy.phantom_case`).

Density, size, shape, partial-volume borders, texture and noise (in-plane grain of about two
pixels, as reconstruction kernels give; 1/sqrt(thickness) for fewer photons per voxel):
see docs/data.md, 'Phantom'.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Lesion diameters, mm: every lesion, and a case's first (dominant) one.
DIAMETER_MM = (5.0, 60.0)
DOMINANT_DIAMETER_MM = (20.0, 60.0)
MAX_LESIONS = 8
#: Share of hyper-dense lesions (most liver lesions are hypo-dense in the portal phase).
HYPER_FRACTION = 0.15
RIM_FRACTION = 0.5  # share of hypo-dense lesions over RIM_MIN_MM with a rim and a dark core
RIM_MIN_MM = 20.0
LOBULATION = 0.12  # largest relative change of the radius
#: Solid lesions stay above water density (cysts are 0-15 HU; a metastasis is 35 HU or more,
#: a necrotic core may be lower).
LESION_MIN_HU = 35.0


@dataclass(frozen=True)
class Grid:
    """Voxel-centre coordinates (mm, RAS) as broadcastable arrays, and the spacing."""

    X: np.ndarray  # (nx, 1, 1)
    Y: np.ndarray  # (1, ny, 1)
    Z: np.ndarray  # (1, 1, nz)
    spacing: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.X.shape[0], self.Y.shape[1], self.Z.shape[2])


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A random 3D rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _diameter(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _centre(rng: np.random.Generator, depth: np.ndarray, radius: float) -> tuple[int, int, int]:
    """A liver voxel at least half a radius deep (the deepest voxels if none is)."""
    ok = np.flatnonzero(depth >= 0.5 * radius)
    if ok.size == 0:
        ok = np.flatnonzero(depth >= 0.8 * depth.max())
    return tuple(int(v) for v in np.unravel_index(rng.choice(ok), depth.shape))


def _depth(liver: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Distance (mm) of every liver voxel to the nearest non-liver voxel (0 outside)."""
    import edt

    box = ndimage.find_objects(liver.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    depth = np.zeros(liver.shape, dtype=np.float32)
    depth[box] = edt.edt(np.ascontiguousarray(liver[box]), anisotropy=spacing, black_border=False)
    return depth


@dataclass(frozen=True)
class Lesion:
    """One lesion: shape (centre, axes, lobulation) and look (kind, HU offsets)."""

    centre: np.ndarray  # (3,) mm
    axes: np.ndarray  # (3, 3) rows: principal axes divided by their radii (mm^-1)
    lobes: np.ndarray  # (3, 3) low-order radial perturbation
    phase: np.ndarray  # (3,)
    diameter: float  # mm, before the axis ratios
    kind: str  # "hypo" | "hyper"
    contrast: float  # HU against the parenchyma
    rim: bool
    rim_hu: float
    core_hu: float

    @property
    def reach(self) -> float:
        """Largest distance (mm) from the centre the lesion can extend to."""
        return float(1 / np.linalg.norm(self.axes, axis=1).min()) * (1 + LOBULATION)

    def radius(self, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised radius (< 1 inside) of points `offset` (..., 3) mm from the centre,
        and the ellipsoid's normalised radius (for the border normal)."""
        q = offset @ self.axes.T
        d = np.sqrt((q**2).sum(-1))
        u = q / np.maximum(d, 1e-6)[..., None]
        wobble = np.tanh(np.sin(u @ self.lobes + self.phase).sum(-1) / 3) * LOBULATION
        return d / (1 + wobble), d

    def occupancy(self, offset: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
        """Fraction of each voxel (centres `offset`, size `spacing`) inside the lesion: the
        signed distance to the border over the voxel's extent along the border normal."""
        d_lob, d = self.radius(offset)
        q = offset @ self.axes.T
        grad = (q @ self.axes) / np.maximum(d, 1e-6)[..., None]  # d(d)/dx, mm^-1
        gnorm = np.maximum(np.linalg.norm(grad, axis=-1), 1e-6)
        extent = np.maximum(np.abs(grad / gnorm[..., None]) @ np.array(spacing), min(spacing))
        return np.clip(0.5 - (d_lob - 1) / gnorm / extent, 0.0, 1.0)

    def value(self, d_lob: np.ndarray) -> np.ndarray:
        """HU offset against the parenchyma at normalised radius `d_lob` (rim and core)."""
        if not self.rim:
            return np.full(d_lob.shape, self.contrast)
        inner = np.where(d_lob < 0.5, self.contrast + self.core_hu, self.contrast)
        return np.where(d_lob > 0.8, self.rim_hu, inner)


def random_lesion(rng: np.random.Generator, centre: np.ndarray, dominant: bool) -> Lesion:
    """A lesion at `centre` (mm) with size, shape and look drawn as the module says."""
    diameter = _diameter(rng, DOMINANT_DIAMETER_MM if dominant else DIAMETER_MM)
    radii = 0.5 * diameter * rng.uniform(0.75, 1.25, 3)
    axes = _rotation(rng) / radii
    lobes, phase = rng.standard_normal((3, 3)), rng.uniform(0, 2 * np.pi, 3)
    kind = "hyper" if rng.random() < HYPER_FRACTION else "hypo"
    contrast = rng.uniform(35, 70) if kind == "hyper" else -rng.uniform(35, 75)
    rim = kind == "hypo" and diameter > RIM_MIN_MM and rng.random() < RIM_FRACTION
    return Lesion(
        centre,
        axes,
        lobes,
        phase,
        diameter,
        kind,
        float(contrast),
        bool(rim),
        float(rng.uniform(15, 35)),
        float(-rng.uniform(10, 30)),
    )


def draw_lesions(
    rng: np.random.Generator,
    hu: np.ndarray,
    liver: np.ndarray,
    grid: Grid,
    liver_hu: float,
    n_lesions: int,
) -> list[np.ndarray]:
    """Draw `n_lesions` lesions into `hu` (in place) inside `liver`; return their masks.

    A lesion that ends up with no voxel centre inside the liver is dropped (the list can be
    shorter than `n_lesions`).
    """
    if n_lesions <= 0 or not liver.any():
        return []
    depth = _depth(liver, grid.spacing)
    masks: list[np.ndarray] = []
    for k in range(n_lesions):
        probe = random_lesion(rng, np.zeros(3), dominant=k == 0)
        c = _centre(rng, depth, 0.5 * probe.diameter)
        centre = np.array([grid.X.flat[c[0]], grid.Y.flat[c[1]], grid.Z.flat[c[2]]])
        contrast = max(probe.contrast, LESION_MIN_HU - liver_hu)  # solid tissue, not water
        lesion = dataclasses.replace(probe, centre=centre, contrast=contrast)
        box = tuple(
            slice(
                max(0, ci - int(np.ceil(lesion.reach / s)) - 2),
                ci + int(np.ceil(lesion.reach / s)) + 3,
            )
            for ci, s in zip(c, grid.spacing, strict=True)
        )
        offset = (
            np.stack(
                np.broadcast_arrays(grid.X[box[0]], grid.Y[:, box[1]], grid.Z[:, :, box[2]]),
                axis=-1,
            )
            - centre
        )
        d_lob, _ = lesion.radius(offset)
        texture = rng.uniform(2, 6) * np.sin(
            offset @ lesion.axes.T @ rng.standard_normal(3) * 2.5 + rng.uniform(0, 6.3)
        )
        inside_liver = liver[box]
        blend = np.where(inside_liver, lesion.occupancy(offset, grid.spacing), 0.0)
        region = hu[box]
        region[...] = region * (1 - blend) + (liver_hu + lesion.value(d_lob) + texture) * blend
        mask = np.zeros(liver.shape, dtype=bool)
        mask[box] = (d_lob < 1) & inside_liver
        if mask.any():
            masks.append(mask)
    return masks


def ct_noise(
    rng: np.random.Generator, shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> np.ndarray:
    """Correlated CT noise (HU), float64: grain of ~2 pixels in-plane, 7-14 HU at 5 mm."""
    white = rng.standard_normal(shape)
    grain = ndimage.gaussian_filter(white, sigma=(0.8, 0.8, 0.0))
    grain /= max(float(grain.std()), 1e-6)
    noise = 0.85 * grain + 0.53 * white
    noise /= max(float(noise.std()), 1e-6)
    sigma = rng.uniform(7, 14) * np.sqrt(5.0 / np.clip(spacing[2], 1.0, 5.0))
    noise *= sigma
    return noise
