"""Synthetic abdominal CT: one deterministic case per (seed, case index), vectorised numpy.

The anatomy is drawn in RAS+ millimetres on the case's voxel grid: body outline, fat,
muscle wall, bowel/fat texture, spine with discs, ribs, aorta and IVC, spleen, kidneys,
stomach (wall, air, fluid), adrenal nodule, a two-lobed liver with slightly uneven parenchyma
and vessels, an optional cyst, and 1-8 hypo- or hyper-dense lesions of 5-60 mm with
partial-volume borders (`phantom_lesions`; every fourth case has none). The liver's HU overlaps
spleen, kidney cortex and stomach wall, so thresholding does not segment it. The image then
gets the scanner blur and correlated noise; labels are drawn crisp at voxel centres
(0 background, 1 liver, 2 tumour).

Everything is computed in float64 and rounded to int16 HU once at the end. In float32, numpy's
transcendental functions (sin, exp) differ in their last bit between numpy versions; with
numpy 2.2.6 and 2.4.6 the same case came out with a few voxels 1 HU apart, and a training on
them took another path. In float64 such a difference would have to fall within about 1e-13
HU of a rounding boundary to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from e2net_eval.data.case import LIVER, TUMOUR
from e2net_eval.data.phantom_lesions import MAX_LESIONS, Grid, ct_noise, draw_lesions

DEFAULT_SIZE = 128
DEFAULT_SLICES = (24, 64)
TUMOUR_FREE_EVERY = 4  # case index % 4 == 2 has no tumour
#: Share of cases with a simple liver cyst (water density, labelled liver): 2.5-18 % of adults
#: have one (ultrasound and CT series); cysts are the classic false "tumour" of a model.
CYST_PREVALENCE = 0.15


@dataclass
class PhantomCase:
    """One generated case: image HU int16 (X, Y, Z), label uint8, RAS affine, spacing (mm)."""

    index: int
    seed: int
    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    flips: tuple[bool, bool, bool]
    tumour_masks: list[np.ndarray] = field(default_factory=list)
    other_masks: dict[str, np.ndarray] = field(default_factory=dict)


def _ellipsoid(X, Y, Z, c, r) -> np.ndarray:
    """Normalised ellipsoid radius (<1 inside), broadcast to the grid."""
    return np.sqrt(((X - c[0]) / r[0]) ** 2 + ((Y - c[1]) / r[1]) ** 2 + ((Z - c[2]) / r[2]) ** 2)


def _column(g: Grid, centre: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    """An elliptic cylinder along z (spine, vessels, muscles) as a mask of the grid's shape."""
    c, r = (centre[0], centre[1], 0), (radii[0], radii[1], 1)
    return np.broadcast_to(_ellipsoid(g.X, g.Y, 0, c, r) < 1, g.shape)


def _interp_matrix(n: int, cells: int) -> np.ndarray:
    """(n, cells) weights that linearly interpolate `cells` knots onto `n` points."""
    pos = (np.arange(n) + 0.5) * cells / n - 0.5
    eye = np.eye(cells)
    return np.stack([np.interp(pos, np.arange(cells), eye[c]) for c in range(cells)], axis=1)


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int, int], cells=(6, 6, 4)
) -> np.ndarray:
    """Low-frequency random field in about [-1, 1] (bowel and fat mixture), separable."""
    coarse = rng.standard_normal(cells)
    wx, wy, wz = (_interp_matrix(n, c) for n, c in zip(shape, cells, strict=True))
    f = np.einsum("ia,abc->ibc", wx, coarse)
    f = np.einsum("ibc,jb->ijc", f, wy)
    f = f @ wz.T
    return np.clip(f / 1.5, -1, 1, out=f)


@dataclass(frozen=True)
class _Torso:
    """Semi-axes (mm) of the abdominal cavity (A, B) and of the ribs' ellipse (ra, rb); the
    spine's y."""

    A: float
    B: float
    spine_y: float
    ra: float
    rb: float


def _grid(rng: np.random.Generator, size: int, slices: tuple[int, int]):
    """The case's voxel grid and its origin (mm). Axis 0 runs to patient left (x decreasing),
    axis 1 posterior, axis 2 superior."""
    nx = ny = int(size)
    nz = int(rng.integers(slices[0], slices[1] + 1))
    dx = round(float(rng.uniform(0.62, 0.95)) * 512 / size, 4)
    extent = float(rng.uniform(150.0, 240.0))
    dz = round(float(np.clip(extent / nz, 0.7, 6.0)), 3)
    x0 = (nx - 1) / 2 * dx + rng.uniform(-8, 8)
    y0 = (ny - 1) / 2 * dx + rng.uniform(-8, 8)
    z0 = -(nz - 1) / 2 * dz
    X = (x0 - np.arange(nx, dtype=np.float64) * dx)[:, None, None]
    Y = (y0 - np.arange(ny, dtype=np.float64) * dx)[None, :, None]
    Z = (z0 + np.arange(nz, dtype=np.float64) * dz)[None, None, :]
    return Grid(X, Y, Z, (dx, dx, dz)), (x0, y0, z0)


def _body_wall(rng: np.random.Generator, g: Grid, hu: np.ndarray) -> tuple[_Torso, np.ndarray]:
    """Subcutaneous fat, muscle wall, bowel/fat texture; returns the torso and its cavity."""
    X, Y, Z, shape = g.X, g.Y, g.Z, g.shape
    fov = shape[0] * g.spacing[0]
    a = min(rng.uniform(130, 168), 0.46 * fov)
    b = min(rng.uniform(95, 122), 0.40 * fov)
    wobble = 1 + 0.04 * np.sin(Z / 60.0 + rng.uniform(0, 6.3))
    body = (X / (a * wobble)) ** 2 + (Y / (b * wobble)) ** 2
    t_fat, t_mus = rng.uniform(8, 28), rng.uniform(8, 14)
    inner = (X / (a * wobble - t_fat)) ** 2 + (Y / (b * wobble - t_fat)) ** 2
    A, B = a - t_fat - t_mus, b - t_fat - t_mus
    cav = (X / (A * wobble)) ** 2 + (Y / (B * wobble)) ** 2
    hu[np.broadcast_to(body < 1, shape)] = rng.uniform(-110, -90)  # subcutaneous fat
    hu[np.broadcast_to(inner < 1, shape)] = rng.uniform(40, 55)  # muscle wall
    cavity = np.broadcast_to(cav < 1, shape)
    texture = _smooth_field(rng, shape)
    belly = -45 + 70 * texture
    belly[texture < -0.75] = -700  # bowel gas
    hu[cavity] = belly[cavity]
    ribs = a - t_fat - t_mus / 2, b - t_fat - t_mus / 2
    return _Torso(A, B, -B * 0.92, *ribs), cavity


def _organs(rng, g: Grid, torso: _Torso, hu: np.ndarray, liver_hu: float, zl: float):
    """Paraspinal muscles, kidneys, spleen, stomach, adrenal nodule, aorta and IVC around a
    liver at height `zl`; returns the adrenal mask and the vessels' HU."""
    X, Y, Z, shape = g.X, g.Y, g.Z, g.shape
    A, B, sy = torso.A, torso.B, torso.spine_y
    for side in (-1, 1):
        hu[_column(g, (side * 32, sy - 30), (24, 18))] = 52
    kidney_z = zl - rng.uniform(55, 80)
    for side in (1, -1):
        c = (side * 0.42 * A, -0.5 * B, kidney_z + rng.uniform(-8, 8))
        r = (0.14 * A, 0.18 * B, rng.uniform(42, 55))
        d = _ellipsoid(X, Y, Z, c, r)
        hu[d < 1] = liver_hu + rng.uniform(5, 50)
        pelvis = (c[0] - side * 0.35 * r[0], c[1], c[2]), (r[0] * 0.35, r[1] * 0.4, r[2] * 0.6)
        hu[_ellipsoid(X, Y, Z, *pelvis) < 1] = 8
    spleen = _ellipsoid(
        X, Y, Z, (-0.55 * A, -0.3 * B, zl + 10), (0.2 * A, 0.32 * B, rng.uniform(40, 55))
    )
    hu[spleen < 1] = liver_hu + rng.uniform(-8, 12)
    sc, sr = (-0.28 * A, 0.3 * B, zl + 20), (0.26 * A, 0.3 * B, rng.uniform(40, 60))
    stomach = _ellipsoid(X, Y, Z, sc, sr)
    hu[stomach < 1] = liver_hu - rng.uniform(5, 30)  # wall
    lumen = _ellipsoid(X, Y, Z, sc, (sr[0] - 5, sr[1] - 5, sr[2] - 5)) < 1
    hu[lumen] = 15
    hu[lumen & np.broadcast_to(Y > sc[1] + 0.35 * sr[1], shape)] = -950
    adrenal = _ellipsoid(X, Y, Z, (-0.38 * A, -0.45 * B, kidney_z + 55), (9, 8, 10)) < 1
    hu[adrenal] = 35
    vessel_hu = liver_hu + rng.uniform(35, 70)
    hu[_column(g, (-0.1 * A, sy + 38), (11, 11))] = vessel_hu + 20  # aorta
    hu[_column(g, (0.14 * A, sy + 45), (13, 11))] = vessel_hu  # IVC
    return adrenal, vessel_hu


def _liver_shape(rng: np.random.Generator, g: Grid, torso: _Torso, zl: float) -> np.ndarray:
    """Two lobes with smooth bumps (before clipping to the cavity)."""
    X, Y, Z = g.X, g.Y, g.Z
    A, B = torso.A, torso.B
    p = rng.uniform(0, 6.3, 4)
    bumps = 0.07 * np.sin(X / 23 + p[0]) * np.cos(Y / 19 + p[1]) + 0.05 * np.sin(Z / 17 + p[2])
    right = _ellipsoid(X, Y, Z, (0.45 * A, 0.02 * B, zl), (0.48 * A, 0.72 * B, rng.uniform(70, 95)))
    left = _ellipsoid(
        X, Y, Z, (0.02 * A, 0.38 * B, zl + 25), (0.38 * A, 0.34 * B, rng.uniform(40, 55))
    )
    return np.minimum(right, left) + bumps < 1


def _paint_liver(rng, g: Grid, torso: _Torso, hu, liver: np.ndarray, liver_hu, vessel_hu):
    """Slightly uneven parenchyma and three hepatic / portal vessels (labelled liver)."""
    X, Y, Z = g.X, g.Y, g.Z
    A, B = torso.A, torso.B
    hu[liver] = liver_hu + 5 * _smooth_field(rng, g.shape, (5, 5, 3))[liver]
    for _ in range(3):
        q = rng.uniform(0, 6.3, 2)
        cx = 0.4 * A + 0.2 * A * np.sin(Z / 40 + q[0])
        cy = 0.1 * B * np.cos(Z / 50 + q[1])
        tube = ((X - cx) ** 2 + (Y - cy) ** 2 < rng.uniform(3, 6) ** 2) & liver
        hu[tube] = vessel_hu


def _cyst(rng: np.random.Generator, g: Grid, hu: np.ndarray, liver: np.ndarray):
    """A simple cyst in CYST_PREVALENCE of the cases: {"livercyst": mask} or {}."""
    liver_idx = np.flatnonzero(liver)
    if not (liver_idx.size and rng.random() < CYST_PREVALENCE):
        return {}
    X, Y, Z = g.X, g.Y, g.Z
    c = np.unravel_index(rng.choice(liver_idx), g.shape)
    r = rng.uniform(5, 10)
    cyst = (_ellipsoid(X, Y, Z, (X.flat[c[0]], Y.flat[c[1]], Z.flat[c[2]]), (r, r, r)) < 1) & liver
    hu[cyst] = rng.uniform(5, 15)
    return {"livercyst": cyst}


def _bones(rng, g: Grid, torso: _Torso, hu: np.ndarray, zl: float, origin) -> np.ndarray:
    """Spine with discs, canal and process, and twelve pairs of ribs; returns the bone mask."""
    X, Y, Z, shape, dx = g.X, g.Y, g.Z, g.shape, g.spacing[0]
    sy, (x0, y0, _) = torso.spine_y, origin
    sr_ = rng.uniform(15, 20)
    disc = np.broadcast_to(((Z - rng.uniform(0, 30)) % 30) < 6, shape)
    vb = np.broadcast_to(_ellipsoid(X, Y, 0, (0, sy, 0), (sr_, sr_ * 0.85, 1)), shape)
    bone = vb < 1
    hu[bone] = np.where(disc[bone], 85, np.where(vb[bone] > 0.82, 700, 260))
    hu[_column(g, (0, sy - sr_ - 9), (8, 8))] = 20  # canal
    hu[_column(g, (0, sy - sr_ - 26), (5, 10)) & ~disc] = 450  # spinous process
    rib_hu = rng.uniform(450, 750)
    ra, rb = torso.ra, torso.rb
    bone = np.broadcast_to(bone, shape).copy()
    zs = Z.ravel()
    half = int(np.ceil(6 / dx)) + 1  # rib cross-section: 6 x 4 mm semi-axes
    for m in range(12):
        theta = np.deg2rad(-170 + m * 30 + 0.15 * zs + rng.uniform(-5, 5))
        present = (((zs - zl) / 35 + m * 0.37) % 1 < 0.55) & (zs > zl - 60)
        cxs, cys = ra * np.cos(theta), rb * np.sin(theta)
        for k in np.flatnonzero(present & (cys > sy + 10)):
            ci, cj = int(round((x0 - cxs[k]) / dx)), int(round((y0 - cys[k]) / dx))
            bi = slice(max(ci - half, 0), max(ci + half + 1, 0))
            bj = slice(max(cj - half, 0), max(cj + half + 1, 0))
            rib = (X[bi, 0, 0][:, None] - cxs[k]) ** 2 / 36 + (
                Y[0, bj, 0][None, :] - cys[k]
            ) ** 2 / 16 < 1
            hu[bi, bj, k][rib] = rib_hu
            bone[bi, bj, k] |= rib
    return bone


def _flip(rng: np.random.Generator, case: PhantomCase) -> PhantomCase:
    """Flip some axes (as scanners and converters store them), keeping the world geometry."""
    case.flips = tuple(bool(f) for f in rng.random(3) < (0.2, 0.2, 0.3))
    affine, shape = case.affine, case.image.shape
    arrays = [case.image, case.label, *case.tumour_masks, *case.other_masks.values()]
    for ax, flip in enumerate(case.flips):
        if flip:
            arrays = [np.flip(arr, axis=ax) for arr in arrays]
            affine[:3, 3] += affine[:3, ax] * (shape[ax] - 1)
            affine[:3, ax] *= -1
    arrays = [np.ascontiguousarray(arr) for arr in arrays]
    n_t = len(case.tumour_masks)
    case.image, case.label, case.tumour_masks = arrays[0], arrays[1], arrays[2 : 2 + n_t]
    case.other_masks = dict(zip(case.other_masks, arrays[2 + n_t :], strict=True))
    return case


def phantom_case(
    seed: int, index: int, size: int = DEFAULT_SIZE, slices: tuple[int, int] = DEFAULT_SLICES
) -> PhantomCase:
    """Generate case `index` of phantom `seed`: in-plane `size` x `size`, slices in `slices`.
    The random draws happen in a fixed order (the functions below, as called here): the same
    (seed, index) gives the same case bytes."""
    rng = np.random.default_rng([int(seed), int(index)])
    g, origin = _grid(rng, size, slices)
    hu = np.full(g.shape, -1000.0)  # float64: see the module docstring
    torso, cavity = _body_wall(rng, g, hu)
    liver_hu = rng.uniform(95, 130)
    zl = rng.uniform(-5, 30)  # liver centre height
    adrenal, vessel_hu = _organs(rng, g, torso, hu, liver_hu, zl)
    liver = _liver_shape(rng, g, torso, zl) & cavity
    _paint_liver(rng, g, torso, hu, liver, liver_hu, vessel_hu)
    label = np.zeros(g.shape, dtype=np.uint8)
    label[liver] = LIVER
    other = {"leftsurretumor": adrenal, **_cyst(rng, g, hu, liver)}
    n_t = 0 if index % TUMOUR_FREE_EVERY == 2 else 1 + min(int(rng.poisson(1.5)), MAX_LESIONS - 1)
    tumours = draw_lesions(rng, hu, liver, g, liver_hu, n_t)
    for mask in tumours:
        label[mask] = TUMOUR
    label[_bones(rng, g, torso, hu, zl, origin)] = 0  # bone overrides everything, never liver
    # Partial volume (more blur across thick slices is already in the sampling), then noise.
    hu = ndimage.gaussian_filter(hu, sigma=(0.7, 0.7, 0.5), mode="nearest")
    hu += ct_noise(rng, g.shape, g.spacing)
    image = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    affine = np.diag([-g.spacing[0], -g.spacing[0], g.spacing[2], 1.0])
    affine[:3, 3] = origin
    case = PhantomCase(index, seed, image, label, affine, g.spacing, (False,) * 3, tumours, other)
    return _flip(rng, case)
