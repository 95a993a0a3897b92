"""When two evaluations' numbers may be compared: the same cases with the same reference
labels (by content, never by path: case ids, reference voxel counts per region and, when
both have it, ``reference_sha256``; docs/metrics.md), the same protocol and scoring options.
Light (plain dicts, no pandas): `regress` uses it directly, `compare` for protocol and options.
"""

from __future__ import annotations

from typing import Any

from e2net_eval.errors import InputError

#: How many case ids an error message names before "...".
SHOWN = 5


def protocol_of(meta: dict[str, Any]) -> str:
    """The protocol an evaluation was scored under (``meta.protocol``)."""
    return str(meta.get("protocol") or "unspecified")


def scoring_options(meta: dict[str, Any]) -> dict[str, Any]:
    """The options that change a number (``meta.scoring_options``; older summaries: the
    rules and the connectivities)."""
    opts = meta.get("scoring_options")
    if isinstance(opts, dict):
        return opts
    old = {
        "rules": meta.get("scoring"),
        "surface_connectivity": meta.get("surface_connectivity"),
        "lesion_connectivity": meta.get("lesion_connectivity"),
    }
    return {k: v for k, v in old.items() if v is not None}


def scoring_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Scoring options both evaluations have, with different values. An option only one has
    (the peer settings of an evaluation with the peer metrics beside one without) belongs
    to numbers only that one computed, so it is no conflict."""
    return [k for k in a if k in b and a[k] != b[k]]


def listed(ids: list[str]) -> str:
    """The first `SHOWN` ids, comma-separated, "..." when there are more."""
    return ", ".join(ids[:SHOWN]) + (" ..." if len(ids) > SHOWN else "")


def reference_cases(summary: dict[str, Any]) -> dict[str, tuple] | None:
    """Case id -> (its reference voxel counts per region, its reference digest or None),
    from ``metric_per_case``; None when the summary has no case list. InputError for a
    malformed case list."""
    items = summary.get("metric_per_case")
    if items is None:
        return None
    if not isinstance(items, list):
        raise InputError("metric_per_case is not a list")
    out: dict[str, tuple] = {}
    for i, item in enumerate(items):
        case = item.get("case") if isinstance(item, dict) else None
        if not isinstance(case, str) or not case:
            raise InputError(f"metric_per_case[{i}] has no case id")
        if case in out:
            raise InputError(f"case {case} is listed twice in metric_per_case")
        counts = tuple(
            (region, block.get("ref_voxels"))
            for region, block in sorted(item.items())
            if isinstance(block, dict) and "ref_voxels" in block
        )
        out[case] = (counts, item.get("reference_sha256"))
    return out


def same_reference(a: tuple, b: tuple) -> bool:
    """Two cases' `reference_cases` entries agree: the same voxel counts, and the same
    digest when both have one."""
    (counts_a, digest_a), (counts_b, digest_b) = a, b
    if counts_a != counts_b:
        return False
    return digest_a is None or digest_b is None or digest_a == digest_b


def _case_difference(cur: dict[str, Any], base: dict[str, Any]) -> str | None:
    cc, bc = reference_cases(cur), reference_cases(base)
    if cc is None or bc is None:  # a summary without its cases: the counts at least
        nc, nb = cur.get("n_cases"), base.get("n_cases")
        if nc is not None and nb is not None and nc != nb:
            return f"case count differs (CURRENT {nc}, BASELINE {nb})"
        return None
    if set(cc) != set(bc):
        parts = [f"cases differ (CURRENT {len(cc)}, BASELINE {len(bc)}"]
        lost = [c for c in bc if c not in cc]
        new = [c for c in cc if c not in bc]
        if lost:
            parts.append(f"{len(lost)} missing from CURRENT: {listed(lost)}")
        if new:
            parts.append(f"{len(new)} only in CURRENT: {listed(new)}")
        return "; ".join(parts) + ")"
    changed = [c for c in bc if not same_reference(cc[c], bc[c])]
    if changed:
        return (
            f"reference labels differ in {len(changed)} case(s): {listed(changed)} "
            "(other reference voxel counts or label digest)"
        )
    return None


def difference(cur: dict[str, Any], base: dict[str, Any]) -> str | None:
    """What makes summary `cur` incomparable with `base` (the first thing found: cases and
    reference, protocol, scoring options), or None when they may be compared."""
    found = _case_difference(cur, base)
    if found:
        return found
    cm = cur.get("meta") if isinstance(cur.get("meta"), dict) else {}
    bm = base.get("meta") if isinstance(base.get("meta"), dict) else {}
    if protocol_of(cm) != protocol_of(bm):
        return f"protocol differs (CURRENT {protocol_of(cm)!r}, BASELINE {protocol_of(bm)!r})"
    co, bo = scoring_options(cm), scoring_options(bm)
    keys = scoring_differences(co, bo)
    if keys:
        return "scoring options differ: " + ", ".join(
            f"{k} (CURRENT {co[k]!r}, BASELINE {bo[k]!r})" for k in keys
        )
    return None
