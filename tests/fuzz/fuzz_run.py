"""Run mutants through the commands and judge each outcome (see `fuzz_core` for the oracle).

One workspace per mutant: ``in/`` holds its inputs (hashed before and after every
command), ``o/`` the outputs. The clean inputs' results, and those of each canonical
re-encoding, are computed once by the same commands and cached.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.fuzz import fuzz_ircadb as fi
from tests.fuzz import fuzz_nifti as fn
from tests.fuzz import fuzz_results as fr
from tests.fuzz.fuzz_core import (
    AS,
    REFUSE,
    SAME,
    Campaign,
    Mutant,
    Result,
    digest,
    leftovers,
    noise_free,
    outcome_problems,
    run_cli,
)

# ---------------------------------------------------------------- commands and facts


def _evaluate(ins: Path, outs: Path, role: str) -> tuple[Result, object]:
    res = run_cli(
        "evaluate", ins / "pred", ins / ("ircadb" if role == "ircadb" else "ref"), "-o", outs / "ev", "--no-progress",
        "--protocol", "fuzz",
    )  # fmt: skip
    facts = (outs / "ev" / "per_case.csv").read_text() if res.code == 0 else None
    return res, facts


def _check(ins: Path, outs: Path, role: str) -> tuple[Result, object]:
    root = ins / {"ref": "ref", "ircadb": "ircadb"}.get(role, "lits")
    res = run_cli("datasets", "check", root, "--json", outs / "check.json")
    facts = None
    if res.code == 0:
        facts = json.loads((outs / "check.json").read_text())
        facts.pop("root", None)
    return res, facts


def _convert(ins: Path, outs: Path, role: str) -> tuple[Result, object]:
    res = run_cli(
        "datasets", "convert", ins / ("ircadb" if role == "ircadb" else "lits"), outs / "conv"
    )
    facts = None
    if res.code == 0:
        facts = {}
        for p in sorted((outs / "conv").glob("*.nii.gz")):
            img = nib.load(p)
            facts[p.name] = (np.asanyarray(img.dataobj), img.affine, img.header.get_zooms())
    return res, facts


#: role -> the commands its mutants run through
NIFTI_COMMANDS: dict[str, list[tuple[str, Callable]]] = {
    "ref": [("evaluate", _evaluate), ("datasets check", _check)],
    "pred": [("evaluate", _evaluate)],
    "image": [("datasets check", _check), ("datasets convert", _convert)],
    "seg": [("datasets check", _check), ("datasets convert", _convert)],
}


#: check JSON fields each kind of legitimate change may alter
_CHANGED_KEYS = {
    "image": {"hu_min", "hu_max", "dtype", "problems"},
    "label": {"label_values", "liver_voxels", "tumour_voxels", "tumour", "problems"},
}


def facts_differ(a, b, loose: bool, changes=frozenset()) -> str | None:
    """Where two commands' results differ (None when equal), ignoring the facts in
    `changes` ("image", "label", or "all"). `loose`: image values (HU) compare to a
    relative 1e-6 (float32 arithmetic order); a dtype name is representation."""
    if "all" in changes:
        return None
    skip = set().union(*(_CHANGED_KEYS[c] for c in changes)) if changes else set()
    if loose:
        skip.add("dtype")
    if isinstance(a, str) or isinstance(b, str):
        return None if a == b or "label" in changes else "output differs"
    if isinstance(a, dict) and "cases" in a:  # datasets check JSON
        return _check_differs(a, b, loose, skip)
    if set(a) != set(b):
        return f"files differ: {sorted(a)} != {sorted(b)}"
    for name in a:
        (xa, aa, za), (xb, ab, zb) = a[name], b[name]
        if not (np.array_equal(aa, ab) and tuple(za) == tuple(zb)):
            return f"{name}: affine or spacing differ"
        if xa.shape != xb.shape:
            return f"{name}: shapes differ"
        kind = "image" if name.startswith("volume") else "label"
        if kind in changes:
            continue
        if kind == "image" and loose:
            if not np.allclose(
                xa.astype(float), xb.astype(float), rtol=1e-6, atol=0, equal_nan=True
            ):
                return f"{name}: voxel values differ"
        elif not np.array_equal(xa, xb):
            return f"{name}: voxel values differ"
    return None


def _check_differs(a: dict, b: dict, loose: bool, skip: set) -> str | None:
    ca, cb = a.get("cases", []), b.get("cases", [])
    if len(ca) != len(cb):
        return "check: case counts differ"
    for x, y in zip(ca, cb, strict=True):
        for key in sorted((set(x) | set(y)) - skip):
            u, v = x.get(key), y.get(key)
            if loose and key in ("hu_min", "hu_max") and u is not None and v is not None:
                if not (u == v or math.isclose(u, v, rel_tol=1e-6)):
                    return f"check {key}: {u} != {v}"
            elif u != v:
                return f"check {key}: {u!r} != {v!r}"
    return None


# ---------------------------------------------------------------- the NIfTI family


class NiftiFamily:
    """Clean trees per (role, encoding) and the runs that judge NIfTI mutants."""

    def __init__(self, work: Path):
        self.work = work
        self.vols = fn.base_volumes()
        self.cache: dict[tuple, tuple[int | str, object]] = {}

    def files(self, role: str, ext: str, replace: dict[str, bytes] | None = None):
        """{relative path: bytes} of the inputs of `role`, with `replace` applied."""
        gz = ext.endswith(".gz")
        lab = fn.encode(self.vols["label"], fn.AFFINE, gz=gz)
        if role in ("ref", "pred"):
            files = {
                f"ref/{fn.CASE}.{ext}": lab,
                f"pred/{fn.CASE}.{ext}": fn.encode(self.vols["pred"], fn.AFFINE, gz=gz),
            }
        else:
            files = {
                f"lits/volume-{fn.CASE}.{ext}": fn.encode(self.vols["image"], fn.AFFINE, gz=gz),
                f"lits/segmentation-{fn.CASE}.{ext}": lab,
            }
        files.update(replace or {})
        return files

    @staticmethod
    def target(role: str, ext: str) -> str:
        return {
            "ref": f"ref/{fn.CASE}.{ext}",
            "pred": f"pred/{fn.CASE}.{ext}",
            "image": f"lits/volume-{fn.CASE}.{ext}",
            "seg": f"lits/segmentation-{fn.CASE}.{ext}",
        }[role]

    def baseline(self, key: tuple, files: dict[str, bytes], role: str, name: str, func):
        """(exit code, facts) of a clean or canonical input set, computed once."""
        if key not in self.cache:
            ws = _workspace(self.work / f"base{len(self.cache)}", files)
            res, facts = func(ws / "in", ws / "o", role)
            assert res.code in (0, 2), (key, res)
            self.cache[key] = (res.code, facts)
            shutil.rmtree(ws)
        return self.cache[key]

    def one(self, rng: random.Random, index: int, camp: Campaign) -> None:
        role, ext = rng.choice(fn.ROLES), rng.choice(fn.ENCODINGS)
        target = self.target(role, ext)
        clean = self.files(role, ext)
        m = fn.make_mutant(rng, clean[target], ext.endswith(".gz"), target)
        self.judge_mutant(m, role, ext, index, camp)

    def judge_mutant(self, m: Mutant, role: str, ext: str, index: int, camp: Campaign) -> None:
        """Set the expectation of `m` (a mutant of `role`'s file) and judge its runs."""
        target = self.target(role, ext)
        clean = self.files(role, ext)
        m.detail = f"{role} .{ext} {m.detail}"
        read_role = "image" if role == "image" else "label"
        m = fn.expectation(m, fn.reference_read(clean[target], read_role), read_role)
        ws = _workspace(self.work / f"m{index}", self.files(role, ext, {target: m.data}))
        for name, func in NIFTI_COMMANDS[role]:
            if m.expect == AS:
                files = self.files(role, ext, {target: m.canonical[target]})
                key = (role, ext, name, hash(m.canonical[target]))
            else:
                files, key = clean, (role, ext, name, "clean")
            expected = self.baseline(key, files, role, name, func)
            judge(camp, m, name, ws, func, role, expected, loose=role == "image")
        shutil.rmtree(ws)


class IrcadbFamily:
    """Clean 3DIRCADb trees (folders, zips) and the runs that judge their mutants."""

    COMMANDS = [("evaluate", _evaluate), ("datasets check", _check), ("datasets convert", _convert)]

    def __init__(self, work: Path, nifti: NiftiFamily):
        self.work, self.cache = work, nifti.cache
        self.trees = {z: fi.base_tree(work, z) for z in (False, True)}
        from e2net_eval.data import open_dataset

        case = open_dataset(work / "clean_dir").load(fi.CASE, image=False)
        pred = np.roll(case.label, 1, axis=0)
        self.pred = {f"pred/{fi.CASE}.nii.gz": fn.encode(pred, case.affine, gz=True)}
        self.members = {
            k: fi.zip_members(v) for k, v in self.trees[True].items() if k.endswith(".zip")
        }

    def one(self, rng: random.Random, index: int, camp: Campaign) -> None:
        zipped = rng.random() < 0.6
        m, tree = fi.make_mutant(rng, self.trees[zipped], zipped)
        m.detail = f"{'zip' if zipped else 'dir'} {m.detail}"
        if m.expect == AS and fi.zip_members(m.data, True) == self.members.get(m.target):
            m.expect, m.canonical = SAME, None
        ws = _workspace(self.work / f"m{index}", {**tree, **self.pred})
        clean = {**self.trees[zipped], **self.pred}
        for name, func in self.COMMANDS:
            if m.expect == AS:
                files = {**clean, **m.canonical}
                key = ("ircadb", zipped, name, hash(m.canonical[m.target]))
            else:
                files, key = clean, ("ircadb", zipped, name, "clean")
            expected = NiftiFamily.baseline(self, key, files, "ircadb", name, func)
            judge(camp, m, name, ws, func, "ircadb", expected)
        shutil.rmtree(ws)


def _regress(ins: Path, outs: Path, role: str) -> tuple[Result, object]:
    res = run_cli("regress", ins / "b", ins / "a", "--json", outs / "regress.json")
    if res.code != 0:
        return res, None
    json.loads((outs / "regress.json").read_text())  # written whole, and JSON
    return res, res.out


def _compare(ins: Path, outs: Path, role: str) -> tuple[Result, object]:
    res = run_cli("compare", f"a={ins / 'a'}", f"b={ins / 'b'}", "-o", outs / "cmp")
    facts = None
    if res.code == 0:
        facts = "\n".join(
            (outs / "cmp" / f).read_text().replace(str(ins), "IN")
            for f in ("tables.csv", "report.md")
        )
    return res, facts


RESULT_COMMANDS = {"regress": _regress, "compare": _compare}


class ResultsFamily:
    """A clean evaluation (three cases) and the runs that judge its mutated files."""

    def __init__(self, work: Path, nifti: NiftiFamily):
        self.work, self.cache = work, nifti.cache
        files = {}
        for i in (1, 2, 3):
            lab = np.roll(nifti.vols["label"], i - 1, axis=1)
            pred = np.roll(np.roll(nifti.vols["pred"], i - 1, axis=1), i - 1, axis=0)
            files[f"ref/{i}.nii.gz"] = fn.encode(lab, fn.AFFINE, gz=True)
            files[f"pred/{i}.nii.gz"] = fn.encode(pred, fn.AFFINE, gz=True)
        ws = _workspace(work / "results_base", files)
        res = run_cli("evaluate", ws / "in/pred", ws / "in/ref", "-o", ws / "o/ev", "--no-progress")
        assert res.code == 0, res
        self.clean = {}
        for name in ("summary.json", "per_case.csv"):
            data = (ws / "o/ev" / name).read_bytes()
            self.clean[f"a/{name}"] = self.clean[f"b/{name}"] = data

    def one(self, rng: random.Random, index: int, camp: Campaign) -> None:
        if rng.random() < 0.75:  # compare draws figures (slow): most mutants go to regress
            m = fr.mutate_summary(rng, self.clean["b/summary.json"].decode())
            commands = [("regress", _regress)] + (
                [("compare", _compare)] if rng.random() < 0.2 else []
            )
        else:
            m = fr.mutate_per_case(rng, self.clean["b/per_case.csv"].decode())
            commands = [("compare", _compare)]
        self.judge_mutant(m, commands, index, camp)

    def judge_mutant(self, m: Mutant, commands, index: int, camp: Campaign) -> None:
        """Judge the runs of `commands` ("regress", "compare") on mutant `m`."""
        commands = [(c, RESULT_COMMANDS[c]) if isinstance(c, str) else c for c in commands]
        ws = _workspace(self.work / f"m{index}", {**self.clean, m.target: m.data})
        for name, func in commands:
            expected = NiftiFamily.baseline(
                self, ("results", name), self.clean, "results", name, func
            )
            judge(camp, m, name, ws, func, "results", expected)
        shutil.rmtree(ws)


def _workspace(folder: Path, files: dict[str, bytes | None]) -> Path:
    for rel, data in files.items():
        if data is None:
            continue
        p = folder / "in" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (folder / "o").mkdir(parents=True)
    return folder


#: single-file outputs a command writes even when it exits 2 (its report of the bad cases)
REPORTS_ON_FAILURE = {"datasets check": {"check.json"}}


def judge(camp, m: Mutant, name: str, ws: Path, func, role, expected, loose=False) -> None:
    """Run one command on the mutant's workspace and record what the oracle says."""
    ins, outs = ws / "in", ws / "o"
    before_in, before_out = digest(ins), set()
    for p in list(outs.iterdir()):
        (shutil.rmtree if p.is_dir() else Path.unlink)(p)
    res, facts = func(ins, outs, role)
    names = [m.target, Path(m.target).name]
    if name == "compare":  # compare names an entry by the NAME of its NAME=PATH
        names.append("b: ")
    if m.family == "ircadb":  # a series-level fault may name the series folder
        names.append("/".join(Path(m.target.split(":")[0]).parts[-3:-1]))
    problems = outcome_problems(res, names)
    quiet = outcome_problems(Result(res.code, res.out, noise_free(res.err)), names)
    problems_std = list(problems)
    if digest(ins) != before_in:
        problems.append("an input changed")
    exp_code, exp_facts = expected
    hidden = [x for x in leftovers(outs, before_out) if x.startswith(".")]
    if hidden:
        problems.append(f"temporaries or locks left behind: {hidden}")
    if res.code == 2:
        left = [x for x in leftovers(outs, before_out) if x not in REPORTS_ON_FAILURE.get(name, ())]
        if left:
            problems.append(f"left behind on failure: {left}")
        if m.must_read:
            problems.append("a well-formed input was refused")
    elif res.code == 0:
        if m.expect == REFUSE:
            problems.append("exit 0 on an input that must be refused")
        elif exp_code != 0:
            problems.append(f"exit 0 where the {m.expect} input exits {exp_code}")
        else:
            diff = facts_differ(facts, exp_facts, loose, m.changes)
            if diff:
                problems.append(f"exit 0 with values unlike the {m.expect} input's: {diff}")
    camp.add(m, name, res, problems, quiet + problems[len(problems_std) :])


#: family -> share of the inputs (3DIRCADb and compare runs cost more than a NIfTI run)
WEIGHTS = {"nifti": 0.6, "ircadb": 0.25, "results": 0.15}


def run_campaign(work: Path, seed: int, n: int, only: list[int] | None = None) -> Campaign:
    """Fuzz `n` inputs (or just the inputs `only`); input i draws everything from its own
    generator, seeded by (seed, i), so one input reruns alone."""
    camp = Campaign(seed, n)
    nifti = NiftiFamily(work)
    families = {"nifti": nifti}
    for i in only if only is not None else range(n):
        rng = random.Random(f"{seed}:{i}")
        name = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if name not in families:
            make = {"ircadb": IrcadbFamily, "results": ResultsFamily}[name]
            families[name] = make(work, nifti)
        start = len(camp.records)
        families[name].one(rng, i, camp)
        for r in camp.records[start:]:
            r.index = i
    return camp
