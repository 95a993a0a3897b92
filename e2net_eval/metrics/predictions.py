"""Find each reference case's prediction file, named as the tools people use name them.

Without a pattern the candidates of case ``<id>`` are, for every stem ``S`` of ``STEMS``
and with ``.nii.gz`` or ``.nii``, ``S`` itself and MONAI ``SaveImage``'s ``S/S_<postfix>``
and ``S_<postfix>`` (``MONAI_POSTFIXES``); a pattern (``'{id}/{id}_seg.nii.gz'``,
``'case_{id:0>5}.nii.gz'``) replaces them (docs/metrics.md, "PRED").
Two existing candidates for one case are an error naming both. A file that is a candidate
of several cases (``liver_3.nii.gz`` is case ``liver_3``'s by its exact name and case
``3``'s by the ``liver_{id}`` stem) belongs to the case whose exact name it is; one that
two cases claim equally is an error (`PredictionFinder.claim`). A candidate that exists
but is no file (a symlink loop, a directory) is an error, never "no prediction", so never
scored as empty with ``--allow-missing``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from e2net_eval.errors import InputError, ReadError
from e2net_eval.util.reading import file_problem

SUFFIXES = (".nii.gz", ".nii")
STEMS = ("{id}", "segmentation-{id}", "test-segmentation-{id}", "liver_{id}", "volume-{id}")
MONAI_POSTFIXES = ("seg", "trans")
#: How the candidates are described in error messages.
LOOKED_FOR = (
    "looked for <id>, segmentation-<id>, test-segmentation-<id>, liver_<id>, volume-<id> "
    "and MONAI's <stem>/<stem>_seg|_trans, with .nii/.nii.gz"
)


def candidates(case_id: str) -> list[str]:
    """Relative paths (POSIX) a prediction of `case_id` may have, without a pattern."""
    out = []
    for stem in STEMS:
        s = stem.format(id=case_id)
        for suffix in SUFFIXES:
            out.append(f"{s}{suffix}")
            for post in MONAI_POSTFIXES:
                out.append(f"{s}/{s}_{post}{suffix}")
                out.append(f"{s}_{post}{suffix}")
    return out


def check_pattern(pattern: str) -> str:
    """`pattern` if it is a usable prediction pattern; InputError (exit 2) otherwise."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
        example = pattern.format(id="0")
    except (ValueError, KeyError, IndexError) as exc:
        raise InputError(f"bad --pred-pattern {pattern!r}: {exc}") from None
    if not fields or set(fields) != {"id"}:
        raise InputError(f"bad --pred-pattern {pattern!r}: use {{id}} and no other field")
    parts = PurePosixPath(example).parts
    if PurePosixPath(example).is_absolute() or ".." in parts:
        raise InputError(f"bad --pred-pattern {pattern!r}: must be a path inside PRED")
    if not example.endswith(SUFFIXES):
        raise InputError(f"bad --pred-pattern {pattern!r}: must end in .nii or .nii.gz")
    return pattern


class PredictionFinder:
    """The NIfTI files of one prediction folder (listed once) and the case each belongs to."""

    def __init__(self, pred_dir: str | Path, pattern: str | None = None):
        self.pred_dir = Path(pred_dir)
        self.pattern = None if pattern is None else check_pattern(pattern)
        depth = 2 if pattern is None else len(PurePosixPath(pattern.format(id="0")).parts)
        self.files: set[str] = set()
        #: file -> the one reference case it belongs to, once `claim` has seen every case
        self.owner: dict[str, str] = {}
        #: NIfTI names that are no readable file, with the reason (reported when claimed)
        self.unusable: dict[str, str] = {}
        for rel, problem in _nifti_entries(self.pred_dir, max(depth, 2)):
            if problem is None:
                self.files.add(rel)
            else:
                self.unusable[rel] = problem

    def matches(self, case_id: str) -> list[str]:
        """The relative paths of existing files that are candidates for `case_id`."""
        if self.pattern is not None:
            names = [self.pattern.format(id=case_id)]
        else:
            names = candidates(case_id)
        return [n for n in names if n in self.files or n in self.unusable]

    def _exact(self, case_id: str, name: str) -> bool:
        return self.pattern is not None or name in (f"{case_id}{x}" for x in SUFFIXES)

    def claim(self, case_ids: Iterable[str]) -> None:
        """Give each file one reference case among `case_ids` (all the reference's cases):
        the one it names exactly, else the only case it is a candidate of; InputError
        naming the file and both cases when two cases claim it equally."""
        claims: dict[str, list[str]] = {}
        for cid in case_ids:
            for name in self.matches(cid):
                claims.setdefault(name, []).append(cid)
        self.owner = {}
        for name, cids in claims.items():
            exact = [c for c in cids if self._exact(c, name)]
            owners = exact if exact else cids
            if len(owners) > 1:
                raise InputError(
                    f"prediction {name} could belong to case {owners[0]} and to case "
                    f"{owners[1]}; rename it or choose with --pred-pattern",
                    case=owners[0],
                    path=self.pred_dir / name,
                )
            self.owner[name] = owners[0]

    def find(self, case_id: str) -> Path | None:
        """The prediction file of `case_id`, None when there is none; InputError when two
        files could be it. After `claim`, a file another case owns is not this case's."""
        found = [n for n in self.matches(case_id) if self.owner.get(n, case_id) == case_id]
        if len(found) > 1:
            raise InputError(
                f"several predictions match this case: {', '.join(found)} "
                "(keep one, or choose with --pred-pattern)",
                case=case_id,
                path=self.pred_dir,
            )
        if found and found[0] in self.unusable:
            raise ReadError(self.unusable[found[0]], case=case_id, path=self.pred_dir / found[0])
        return self.pred_dir / found[0] if found else None

    def unmatched(self, case_ids: Iterable[str]) -> list[str]:
        """NIfTI files (relative paths) that no reference case claims: a naming mistake
        shows up here."""
        claimed = {n for cid in case_ids for n in self.matches(cid)}
        return sorted(self.files - claimed)

    def looked_for(self) -> str:
        return LOOKED_FOR if self.pattern is None else f"looked for {self.pattern!r}"


def _nifti_entries(root: Path, depth: int) -> Iterable[tuple[str, str | None]]:
    """(relative POSIX path, None or why it is no readable file) of every visible entry named
    ``*.nii``/``*.nii.gz``, `depth` levels down at most (directories with such a name are
    not entered: they are reported if a case claims them)."""
    stack = [(root, PurePosixPath())]
    while stack:
        folder, rel = stack.pop()
        for path in folder.iterdir():
            if path.name.startswith("."):
                continue
            if path.name.endswith(SUFFIXES):
                problem, _ = file_problem(path, "NIfTI file", empty_ok=True)
                yield str(rel / path.name), problem
            elif path.is_dir() and len(rel.parts) + 1 < depth:
                stack.append((path, rel / path.name))
