"""Mutants of an evaluation's ``summary.json`` and ``per_case.csv`` (for ``regress`` and
``compare``).

The clean evaluation scores three small cases (`fuzz_nifti` volumes, shifted per case).
A mutant replaces one of the two files. Expectations: well-formed variants (other
indentation or key order, CRLF line ends, rows or columns in another order) must be read
and give the clean output; JSON that is not strict JSON (NaN, Infinity, bad UTF-8, cut)
must be refused; every other mutant may be refused, and exit 0 must give exactly the clean
output (a changed, dropped or impossible value in the data a command uses cannot leave
its output unchanged, so it must be refused). Mutants of ``meta`` are judged for
robustness only (another branch defines which meta fields `regress` compares, issue 19 W3).
"""

from __future__ import annotations

import csv
import io
import json
import random

from tests.fuzz.fuzz_core import REFUSE, SAME, Mutant

METRIC_SECTIONS = ("regions", "tumour_burden", "detection", "panoptic", "n_cases")
#: values of another JSON type than a metric's number (null is a metric's "undefined")
ODD_JSON = ('"0.9"', "true", "false", "[]", "{}", '""', '"NaN"')
#: an independent table of metric ranges: the last key of a leaf -> (low, high)
UNIT = ("dice", "dice_per_case", "dice_global", "voe", "nsd", "precision", "recall", "f1")
UNIT += ("rq", "sq", "pq", "lesion_dice")
NONNEG = ("assd", "rmsd", "mssd", "hd95", "hd95_pooled", "masd", "rmse", "max_abs_error")
COUNTS = ("n", "n_undefined", "tp", "fp", "fn", "n_cases", "n_ref_lesions", "n_pred_lesions")
ODD_CELLS = ("abc", "nan", "inf", "-inf", "5.0", "-1", "1e400", "", "0x10", "1,5", "0.5", " ")


def _leaves(obj, path=()):
    """(path, value) of every leaf of a JSON value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _replace(obj, path, text_value: str) -> str:
    """JSON text of `obj` with the leaf at `path` replaced by the raw JSON `text_value`."""
    marker = "\u0000MARK\u0000"
    node = obj
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = marker
    return json.dumps(obj, indent=2).replace(json.dumps(marker), text_value)


def _pick_leaf(rng, obj, sections):
    leaves = [(p, v) for p, v in _leaves(obj) if p and p[0] in sections]
    return rng.choice(leaves)


def mutate_summary(rng: random.Random, text: str) -> Mutant:
    obj = json.loads(text)
    kind = rng.choice(
        [
            "json_neutral",
            "json_type",
            "json_range",
            "json_meta",
            "json_nan",
            "json_huge",
            "json_deep",
        ]
        + ["json_missing", "json_syntax", "json_dup_key", "json_per_case_item"]
    )
    target = "b/summary.json"
    m = Mutant("results", kind, "", target, None)
    if kind == "json_neutral":
        m.data = json.dumps(obj, indent=rng.choice([None, 0, 4, "\t"]), sort_keys=rng.random() < 0.5,
                            ensure_ascii=rng.random() < 0.5).encode()  # fmt: skip
        m.detail, m.must_read = "re-indented / re-ordered", True
    elif kind == "json_range":
        path, value = _impossible(rng, obj)
        m.data, m.detail = (
            _replace(obj, path, value).encode(),
            f"{'.'.join(map(str, path))}={value}",
        )
        m.pending = "W6"
    elif kind in ("json_type", "json_nan", "json_huge", "json_deep", "json_meta"):
        sections = ("meta",) if kind == "json_meta" else METRIC_SECTIONS
        path, _ = _pick_leaf(rng, obj, sections)
        value = {
            "json_type": lambda: rng.choice(ODD_JSON),
            "json_meta": lambda: rng.choice(ODD_JSON + ('"<script>"', '"=cmd|x"')),
            "json_nan": lambda: rng.choice(["NaN", "Infinity", "-Infinity"]),
            "json_huge": lambda: rng.choice(["9" * 400, "-" + "9" * 400, "1" + "0" * 5000]),
            "json_deep": lambda: "[" * 100_000 + "]" * 100_000,
        }[kind]()
        m.data = _replace(obj, path, value).encode()
        m.detail = f"{'.'.join(map(str, path))}={value[:20]}"
        m.expect = REFUSE if kind == "json_nan" else SAME
        m.changes = frozenset({"all"}) if kind == "json_meta" else frozenset()
        m.pending = "C4" if kind in ("json_huge", "json_deep") else None
        if kind == "json_type":  # regress checks types already; compare shows it as n/a
            m.pending, m.pending_in = "W6", frozenset({"compare"})
    elif kind == "json_missing":
        path, _ = _pick_leaf(rng, obj, (*METRIC_SECTIONS, "meta", "metric_per_case"))
        path = path[: rng.randrange(1, len(path) + 1)]
        node = obj
        for p in path[:-1]:
            node = node[p]
        del node[path[-1]]
        m.data, m.detail = json.dumps(obj, indent=2).encode(), f"no {'.'.join(map(str, path))}"
        # a missing metric is refused (regress) or shown as n/a (compare: an evaluation by
        # an older version lacks newer metrics): only the robustness promises are judged
        m.changes = frozenset({"all"})
        m.pending = "C5" if path[0] == "metric_per_case" else None
    elif kind == "json_per_case_item":
        items = obj["metric_per_case"]
        i = rng.randrange(len(items))
        items[i] = rng.choice([None, 5, "x", [], {}, {"case": None}, {"case": items[i]["case"]}])
        m.data, m.detail = json.dumps(obj, indent=2).encode(), f"metric_per_case[{i}]={items[i]!r}"
        m.pending = "C5"
    elif kind == "json_syntax":
        raw = bytearray(text.encode())
        how = rng.choice(["cut", "utf8", "bom", "nul"])
        if how == "cut":
            del raw[rng.randrange(len(raw)) :]
        elif how == "utf8":
            raw[rng.randrange(len(raw)) : 0] = b"\xff\xfe"
        elif how == "bom":
            raw[:0] = b"\xef\xbb\xbf"
        else:
            raw[rng.randrange(len(raw)) : 0] = b"\0"
        m.data, m.detail = bytes(raw), how
        m.expect = REFUSE if how in ("cut", "utf8") else SAME
    else:  # json_dup_key: a key given twice, JSON's undefined behaviour
        path, value = _pick_leaf(rng, obj, METRIC_SECTIONS)
        other = rng.choice(["0.25", "1", "0", "3.5"])
        key = json.dumps(str(path[-1]))
        text2 = _replace(obj, path, f"{json.dumps(value)}, {key}: {other}")
        m.data, m.detail = text2.encode(), f"{'.'.join(map(str, path))} twice"
    return m


def _metric_of(path) -> str:
    """The metric a leaf belongs to: its own key, or its parent's for mean/std/min/..."""
    names = [p for p in path if isinstance(p, str)]
    if names[-1] in ("mean", "std", "median", "min", "max") and len(names) > 1:
        return names[-2]
    return names[-1]


def _impossible(rng, obj) -> tuple[tuple, str]:
    """A metric leaf and a value outside its range (Dice 1.5, a negative distance...)."""
    leaves = [
        (p, _metric_of(p))
        for p, v in _leaves(obj)
        if p and p[0] in METRIC_SECTIONS and isinstance(v, (int, float))
        and not isinstance(v, bool) and not (p[-1] == "std")
    ]  # fmt: skip
    leaves = [(p, name) for p, name in leaves if name in UNIT + NONNEG + COUNTS]
    path, name = rng.choice(leaves)
    if name in UNIT:
        return path, rng.choice(["1.5", "-0.25", "101", "1e300"])
    if name in NONNEG:
        return path, rng.choice(["-1", "-0.001", "-1e300"])
    return path, rng.choice(["-1", "2.5", "-7"])


def mutate_per_case(rng: random.Random, text: str) -> Mutant:
    rows = list(csv.reader(io.StringIO(text)))
    head, body = rows[0], rows[1:]
    kind = rng.choice(
        ["csv_neutral", "csv_value", "csv_missing_column", "csv_dup_row", "csv_encoding"]
        + ["csv_truncate", "csv_value"]
    )
    m = Mutant("results", kind, "", "b/per_case.csv", None)
    if kind == "csv_neutral":
        how = rng.choice(["crlf", "rows", "columns"])
        if how == "rows":
            rng.shuffle(body)
        elif how == "columns":
            order = list(range(len(head)))
            rng.shuffle(order)
            head, body = [head[i] for i in order], [[r[i] for i in order] for r in body]
        m.data = _csv([head, *body], "\r\n" if how == "crlf" else "\n")
        m.detail, m.must_read = how, True
    elif kind == "csv_value":
        metric_cols = [i for i, h in enumerate(head) if h not in ("case", "region")]
        r, c = rng.randrange(len(body)), rng.choice(metric_cols)
        value = rng.choice(ODD_CELLS)
        body[r][c] = value
        m.data, m.detail = _csv([head, *body]), f"row {r} {head[c]}={value!r}"
        m.pending = "W6"
    elif kind == "csv_missing_column":
        c = rng.randrange(len(head))
        m.detail = f"no column {head[c]}"
        m.data = _csv([[x for i, x in enumerate(r) if i != c] for r in [head, *body]])
        m.pending = "C5"
    elif kind == "csv_dup_row":
        r = rng.randrange(len(body))
        body.insert(r, list(body[r]))
        m.data, m.detail, m.pending = _csv([head, *body]), f"row {r} twice", "C5"
    elif kind == "csv_encoding":
        how = rng.choice(["latin1", "nul", "utf16", "bom"])
        raw = _csv([head, *body])
        pos = rng.randrange(len(raw))
        m.data = {
            "latin1": raw[:pos] + b"\xe9" + raw[pos:],
            "nul": raw[:pos] + b"\0" + raw[pos:],
            "utf16": raw.decode().encode("utf-16"),
            "bom": b"\xef\xbb\xbf" + raw,
        }[how]
        m.detail = how
    else:
        raw = _csv([head, *body])
        n = rng.randrange(1, len(raw))
        m.data, m.detail = raw[:n], f"cut to {n}"
        m.pending = "W6"  # rows lost: only the cross-check against summary.json finds it
    return m


def _csv(rows, newline: str = "\n") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows(rows)
    return buf.getvalue().encode()
