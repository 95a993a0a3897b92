"""The catalogue: every configuration of the paper's Table 3 and every size profile, once.

Every list, label, order, budget, default and `--profile` choice elsewhere derives from here.
Adding a configuration is one `register_model(ModelEntry(...))` (a row of `_TABLE3` below);
adding a profile is one `register_profile(Profile(...))`. The module imports no torch and
nothing else of the package (networks are built by `factory.create_model`), so light
commands may read it.

    from reference_models import list_models, create_model, get_model
    list_models("*dcff")          # ['edge_dcff', 'dist_dcff']
    get_model("dist").label       # '+ dist'
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: What the edge branch is supervised with ("none": no edge branch, a single R2UNet).
EDGE_TARGETS = ("none", "edge", "dist")


@dataclass(frozen=True)
class Profile:
    """One size profile: the networks' widths, input sizes, training and runtime defaults.

    name: `"small"` or `"paper"`; widths: `ModelConfig` width fields (stem_channels, planes,
    layers, base_width, scale, decoder_channels); input_size: per stage (stage-1 crop /
    stage-2 resize side); train: the profile's `TrainSettings` values (batch_size,
    steps_per_epoch, max_epochs, patience, max_val_samples); loader_workers: (CPU, CUDA);
    cpu_threads: torch CPU threads when OMP_NUM_THREADS is unset (None: torch's default);
    bench_case: (slice side, slices) of the synthetic case `bench inference` predicts.
    """

    name: str
    description: str
    widths: Mapping[str, Any]
    input_size: Mapping[int, int]
    train: Mapping[str, Any]
    loader_workers: tuple[int, int] = (0, 0)
    cpu_threads: int | None = None
    bench_case: tuple[int, int] = (128, 32)


@dataclass(frozen=True)
class ModelEntry:
    """One row of Table 3: what the network is, how the report names it, what it costs.

    order: position in Table 3 (rows, reports, paired tests and `list_models` follow it);
    stage2_preference: rank as the default stage-2 model of `predict` (1 = first choice;
    None for stage-1 models); budget: the ablation's optimiser steps per profile (None = the
    trainer's own stopping rule); ablates: the configuration this one adds a single
    component to, for the report's paired tests beyond consecutive rows (None: only those);
    step_cost: seconds per 100 small-profile training steps on one CPU thread (measured in
    the default ablation's ``ablation_state.json``), which only orders parallel work.
    """

    name: str
    label: str
    stage: int
    out_channels: int
    edge_target: str
    dcff: bool
    order: int
    stage2_preference: int | None = None
    budget: Mapping[str, int | None] = field(default_factory=dict)
    ablates: str | None = None
    step_cost: float = 10.0

    @property
    def segments_tumour(self) -> bool:
        """True when the network outputs a tumour channel (every stage-2 row)."""
        return self.out_channels > 1

    def steps_for(self, profile: str) -> int | None:
        """The ablation's step budget in `profile` (None: train to the stopping rule)."""
        return self.budget.get(profile)


def check_row(stage: int, out_channels: int, edge_target: str, dcff: bool) -> None:
    """What a network can be (ValueError naming the field): the rule behind every
    `ModelEntry` and `ModelConfig`."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    if out_channels not in (1, 2):
        raise ValueError(f"out_channels must be 1 or 2, got {out_channels}")
    if edge_target not in EDGE_TARGETS:
        raise ValueError(f"edge_target must be one of {EDGE_TARGETS}, got {edge_target!r}")
    if dcff and edge_target == "none":
        raise ValueError("dcff needs an edge branch (edge_target 'edge' or 'dist')")


_MODELS: dict[str, ModelEntry] = {}
_PROFILES: dict[str, Profile] = {}
#: The `Profile` fields a registered profile holds read-only.
_PROFILE_MAPPINGS = ("widths", "input_size", "train")


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add a configuration to the catalogue (a name may be registered once)."""
    if entry.name in _MODELS:
        raise ValueError(f"model {entry.name!r} is already registered")
    check_row(entry.stage, entry.out_channels, entry.edge_target, entry.dcff)
    unknown = set(entry.budget) - set(_PROFILES)
    if unknown:
        raise ValueError(f"budget for unknown profile(s) {sorted(unknown)}")
    _MODELS[entry.name] = dataclasses.replace(entry, budget=MappingProxyType(dict(entry.budget)))
    return _MODELS[entry.name]


def register_profile(profile: Profile) -> Profile:
    """Add a size profile to the catalogue."""
    if profile.name in _PROFILES:
        raise ValueError(f"profile {profile.name!r} is already registered")
    frozen = {k: MappingProxyType(dict(getattr(profile, k))) for k in _PROFILE_MAPPINGS}
    _PROFILES[profile.name] = dataclasses.replace(profile, **frozen)
    return _PROFILES[profile.name]


@contextlib.contextmanager
def registered(*entries: ModelEntry | Profile) -> Iterator[None]:
    """Register entries for the duration of a `with` block (tests, experiments)."""
    added: list[tuple[dict, str]] = []
    try:
        for e in entries:
            book = _PROFILES if isinstance(e, Profile) else _MODELS
            (register_profile if isinstance(e, Profile) else register_model)(e)
            added.append((book, e.name))
        yield
    finally:
        for book, name in reversed(added):
            book.pop(name, None)


def list_models(pattern: str = "*", *, stage: int | None = None) -> list[str]:
    """Configuration names matching the glob `pattern` (and `stage`), in Table 3 order."""
    return [
        e.name
        for e in sorted(_MODELS.values(), key=lambda e: e.order)
        if fnmatch.fnmatchcase(e.name, pattern) and (stage is None or e.stage == stage)
    ]


def list_profiles() -> list[str]:
    """Profile names, the default (`small`) first."""
    return list(_PROFILES)


def get_model(name: str) -> ModelEntry:
    """The catalogue entry of configuration `name` (ValueError naming the known ones)."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def get_profile(name: str) -> Profile:
    """The catalogue entry of profile `name` (ValueError naming the known ones)."""
    try:
        return _PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(_PROFILES)}") from None


def model_label(name: str) -> str:
    """The row label of a configuration (its name when it is not in the catalogue)."""
    return _MODELS[name].label if name in _MODELS else name


def model_sort_key(name: str) -> tuple[int, str]:
    """Sort key of a configuration name: Table 3 order, unknown names last by name."""
    entry = _MODELS.get(name)
    return (entry.order, name) if entry else (1 << 30, name)


def stage1_name() -> str:
    """The stage-1 (liver) configuration: the first of Table 3's stage-1 rows."""
    return list_models(stage=1)[0]


def stage2_preference() -> list[str]:
    """Stage-2 configurations, the most complete (predict's default) first."""
    ranked = [e for e in _MODELS.values() if e.stage2_preference is not None]
    return [e.name for e in sorted(ranked, key=lambda e: (e.stage2_preference, e.order))]


def paired_comparisons() -> list[tuple[str, str]]:
    """Pairs (A, B) the report tests B against: consecutive Table 3 rows, then each
    configuration against the one it `ablates` when that is not the row before it."""
    names = list_models()
    pairs = list(zip(names, names[1:], strict=False))
    for name in names:
        base = _MODELS[name].ablates
        if base is not None and (base, name) not in pairs:
            pairs.append((base, name))
    return pairs


# ---------------------------------------------------------------------------------------
# The catalogue. Profiles first (model budgets name them).
# ---------------------------------------------------------------------------------------
register_profile(
    Profile(
        name="small",
        description="a quarter of the widths, one block per stage: CPU runs and CI",
        widths=dict(
            stem_channels=16,
            planes=(16, 32, 64, 128),
            layers=(1, 1, 1, 1),
            base_width=26,
            scale=4,
            decoder_channels=16,
        ),
        input_size={1: 112, 2: 64},
        # A few hundred steps instead of days: see docs/training.md ("Why tumours were not
        # learned") for the measurements behind lr, tumour_fraction, plateau_on and patience.
        train=dict(
            batch_size=8,
            steps_per_epoch=25,
            max_epochs=40,
            patience=4,
            max_val_samples=160,
            lr=0.03,
            tumour_fraction=0.5,
            plateau_on="val_dice",
        ),
        loader_workers=(0, 0),
        # Measured on a 2-core machine (`e2net-eval bench train`): the small profile's
        # convolutions are too small to split, two threads were 1.85x *slower* than one
        # (dist_dcff, batch 8, 64x64).
        cpu_threads=1,
        bench_case=(128, 32),
    )
)
register_profile(
    Profile(
        name="paper",
        description="the paper's: Res2Net-50 26w x 4s encoder, 32-channel decoder",
        widths=dict(
            stem_channels=64,
            planes=(64, 128, 256, 512),
            layers=(3, 4, 6, 3),
            base_width=26,
            scale=4,
            decoder_channels=32,
        ),
        input_size={1: 448, 2: 256},
        train=dict(
            batch_size=32, steps_per_epoch=None, max_epochs=100, patience=3, max_val_samples=None
        ),
        loader_workers=(0, 8),
        cpu_threads=None,  # two threads were 1.75x faster than one (stage1, batch 2, 448x448)
        bench_case=(512, 432),
    )
)

#: The ablation's budget on the small profile: the default command must finish on a 2-core
#: CPU in 5 minutes; the paper profile trains to the schedule's stopping rule. Stage 2 needs
#: more steps than stage 1: its tumour output starts to learn after 150-250 steps.
_SMALL_STEPS = {1: 300, 2: 450}

#: Table 3 in its order: name, label, stage, out_channels, edge_target, dcff (the first
#: `ModelEntry` fields), then stage2_preference, ablates and step_cost.
_TABLE3 = [
    ("stage1", "1st stage", 1, 1, "none", False, None, None, 14.0),
    ("baseline", "Baseline (2nd stage)", 2, 2, "none", False, 5, None, 5.5),
    ("edge", "+ edge", 2, 2, "edge", False, 4, None, 11.0),
    ("dist", "+ dist", 2, 2, "dist", False, 3, None, 14.0),
    ("edge_dcff", "+ edge + DCFF", 2, 2, "edge", True, 2, "edge", 17.0),
    ("dist_dcff", "+ dist + DCFF", 2, 2, "dist", True, 1, "dist", 17.0),
]
for _order, (*_row, _pref, _ablates, _cost) in enumerate(_TABLE3):
    _budget = {"small": _SMALL_STEPS[_row[2]], "paper": None}
    register_model(ModelEntry(*_row, _order, _pref, _budget, _ablates, _cost))
