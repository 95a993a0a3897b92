"""What defines an ablation run (`AblationArgs`, its replicates), checked once (`check_args`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2net_eval.errors import InputError
from e2net_eval.workflows.launch.base import LOCAL, Launcher
from e2net_eval.workflows.launch.choose import make_launcher
from reference_models.registry import (
    Profile,
    get_model,
    get_profile,
    list_models,
    list_profiles,
    stage1_name,
)

# The generated phantom sets (step budgets: the catalogue's `ModelEntry.budget`). 2 of the 8
# planted 3DIRCADb patients have no tumour, as 5 of the 20 real ones.
PHANTOM_LITS_CASES = 60
PHANTOM_IRCADB_INDICES = (2, 5, 9, 13, 17, 22, 27, 31)
PHANTOM_N_VAL = 16


@dataclass(frozen=True)
class Replicate:
    """One repetition of the ablation: its index, split seed and training seed."""

    index: int
    split_seed: int
    seed: int


@dataclass
class AblationArgs:
    """What defines a run: a rerun into its folder needs the same `fingerprint` (or extends it)."""

    out: Path
    lits: Path | None = None
    ircadb: Path | None = None
    profile: str = "small"
    configs: list[str] = field(default_factory=lambda: list_models())
    seed: int = 0
    paper_protocol: bool = False
    max_steps: int | None = None  # overrides the catalogue budget of every config
    device: str = "auto"  # not part of the fingerprint: a run may resume on another device
    workers: int | None = None  # not part of the fingerprint: results do not depend on it
    replicates: int | None = None  # None: as many as the seed lists name, else 1
    split_seeds: list[int] | None = None  # per replicate (default seed + r)
    train_seeds: list[int] | None = None  # per replicate (default seed + r); CLI --seeds
    backbone_weights: Path | None = None  # Res2Net-50 checkpoint for every encoder
    _backbone: dict[str, str] | None = field(default=None, init=False, repr=False)
    # where the steps run (not part of the fingerprint either): a `launch.base.LAUNCHERS`
    # name; `slurm`: the `launch.slurm.SlurmOptions` of the cluster launchers
    launcher: str = LOCAL
    slurm: Any = None

    @property
    def protocol(self) -> str:
        return "paper" if self.paper_protocol else "leak-free"

    @property
    def phantom(self) -> bool:
        return self.lits is None

    @property
    def has_ircadb(self) -> bool:
        return self.phantom or self.ircadb is not None

    def steps_for(self, config: str) -> int | None:
        """`max_steps` when given, else the catalogue's budget of `config` in the profile."""
        if self.max_steps is not None:
            return self.max_steps
        return get_model(config).steps_for(self.profile)

    def replicate_list(self) -> list[Replicate]:
        """The replicates: `replicates` of them (or as many as a seed list names), seeds from
        ``split_seeds[r]``/``train_seeds[r]``, each ``seed + r`` when not named."""
        count = self.replicates
        for option, seeds in (("--split-seeds", self.split_seeds), ("--seeds", self.train_seeds)):
            if seeds is None:
                continue
            if count is None:
                count = len(seeds)
            elif len(seeds) != count:
                raise InputError(f"{option} names {len(seeds)} seed(s) for {count} replicate(s)")
        count = 1 if count is None else count
        if count < 1:
            raise InputError(f"--replicates must be at least 1, got {count}")
        split = list(self.split_seeds or [self.seed + r for r in range(count)])
        train = list(self.train_seeds or [self.seed + r for r in range(count)])
        pairs = [(int(a), int(b)) for a, b in zip(split, train, strict=True)]
        twice = sorted({p for p in pairs if pairs.count(p) > 1})
        if twice:
            raise InputError(
                f"replicates repeat (split seed, seed) {twice}: a replicate must differ in at "
                "least one of its seeds"
            )
        return [Replicate(r, a, b) for r, (a, b) in enumerate(pairs)]

    def backbone(self) -> dict[str, str] | None:
        """``{"path", "sha256"}`` of `backbone_weights` (the file is read once), or None."""
        if self.backbone_weights is None:
            return None
        if self._backbone is None:
            from e2net_eval.runtime.weights import backbone_record

            self._backbone = backbone_record(self.backbone_weights)
        return self._backbone

    def fingerprint(self) -> dict[str, Any]:
        """The arguments that decide the results (replicate and backbone keys only when not
        the defaults, so a run started before they existed resumes as it is)."""
        out: dict[str, Any] = {
            "lits": None if self.lits is None else str(Path(self.lits).resolve()),
            "ircadb": None if self.ircadb is None else str(Path(self.ircadb).resolve()),
            "profile": self.profile,
            "configs": list(self.configs),
            "seed": int(self.seed),
            "protocol": self.protocol,
            "max_steps": {c: self.steps_for(c) for c in self.configs},
            "phantom": {
                "lits_cases": PHANTOM_LITS_CASES,
                "ircadb_indices": list(PHANTOM_IRCADB_INDICES),
                "n_val": PHANTOM_N_VAL,
            }
            if self.phantom
            else None,
        }
        reps = self.replicate_list()
        if [(r.split_seed, r.seed) for r in reps] != [(self.seed, self.seed)]:
            out["replicates"] = [{"split_seed": r.split_seed, "seed": r.seed} for r in reps]
        backbone = self.backbone()
        if backbone is not None:
            # the file's content decides the results, not where it lies: the same file under
            # another path resumes, another file is refused
            out["backbone_sha256"] = backbone["sha256"]
        return out


def _replicate_seeds(fingerprint: dict[str, Any]) -> list[dict[str, int]]:
    seed = fingerprint.get("seed")
    return fingerprint.get("replicates") or [{"split_seed": seed, "seed": seed}]


def fingerprint_extends(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when `new` is `old` with replicates appended (docs/reports.md, "Replicates")."""
    rest_old = {k: v for k, v in old.items() if k != "replicates"}
    rest_new = {k: v for k, v in new.items() if k != "replicates"}
    have, want = _replicate_seeds(old), _replicate_seeds(new)
    return rest_old == rest_new and len(want) > len(have) and want[: len(have)] == have


def normalise_configs(configs: list[str] | tuple[str, ...] | None) -> list[str]:
    """Configs in Table 3 order, the stage-1 one always included (every prediction needs it)."""
    order = list_models()
    chosen = set(configs or order)
    unknown = sorted(chosen - set(order))
    if unknown:
        raise InputError(f"unknown configuration(s) {unknown}; choose from {order}")
    chosen.add(stage1_name())
    return [c for c in order if c in chosen]


def check_args(args: AblationArgs) -> tuple[Profile, Launcher]:
    """Every check of the arguments, before any work; normalises `configs`; (profile, launcher)."""
    if args.profile not in list_profiles():
        raise InputError(f"unknown profile {args.profile!r}; choose from {list_profiles()}")
    profile = get_profile(args.profile)
    if args.lits is None and args.ircadb is not None:
        raise InputError("--ircadb needs --lits (the models are trained on LiTS)")
    for root in (args.lits, args.ircadb):
        if root is not None and not Path(root).is_dir():
            raise InputError("data folder not found", path=root)
    launcher = make_launcher(
        args.launcher, profile, device=args.device, workers=args.workers, slurm=args.slurm
    )
    launcher.check()
    args.configs = normalise_configs(args.configs)
    args.replicate_list()  # bad replicate seeds fail now
    if args.device != "auto":  # a bad --device fails now, not after the data and the split
        from e2net_eval.runtime.device import resolve_device

        resolve_device(args.device)
    if args.backbone_weights is not None:  # a file that does not fit fails now too
        from e2net_eval.runtime.weights import check_backbone

        check_backbone(args.backbone_weights, args.configs, args.profile)
        args.backbone()
    return profile, launcher
