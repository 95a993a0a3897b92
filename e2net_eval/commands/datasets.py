"""`e2net-eval datasets ...`: write phantoms, check, convert, split and de-duplicate datasets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from e2net_eval.data.anatomy import DEFAULT_SIZE, DEFAULT_SLICES
from e2net_eval.data.convert import convert_dataset, describe_case
from e2net_eval.data.dataset import open_dataset
from e2net_eval.data.overlap import DEFAULT_THRESHOLD, find_overlap
from e2net_eval.data.phantom import LAYOUTS, PhantomSpec, write_phantom
from e2net_eval.data.split import PAPER_TOTAL, PAPER_TRAIN, PAPER_VALIDATION, make_split
from e2net_eval.errors import InputError
from e2net_eval.util.jsonio import dump_json, load_json
from e2net_eval.util.outdir import check_output_file


def _int_list(text: str | None) -> list[int] | None:
    """Parse ``"1,3,5-8"`` into [1, 3, 5, 6, 7, 8]."""
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    except ValueError:
        raise InputError(f"not a list of case indices: {text!r}") from None
    return out


@click.group()
def datasets() -> None:
    """Phantom data, and LiTS / Task03 / 3DIRCADb datasets: check, convert, split, overlap."""


@datasets.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice(LAYOUTS), default="lits", show_default=True)
@click.option("--cases", "n_cases", type=int, default=8, show_default=True, help="Number of cases.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--start", type=int, default=0, show_default=True, help="First case index.")
@click.option("--indices", help="Explicit case indices, e.g. '3,5,10-12' (overrides --cases).")
@click.option(
    "--size",
    type=int,
    default=DEFAULT_SIZE,
    show_default=True,
    help="In-plane size (512 for paper-size cases).",
)
@click.option(
    "--slices",
    nargs=2,
    type=int,
    default=DEFAULT_SLICES,
    show_default=True,
    help="Slice count range MIN MAX.",
)
@click.option("--zip", "zipped", is_flag=True, help="ircadb: PATIENT_DICOM.zip / MASKS_DICOM.zip.")
@click.option(
    "--gzip/--no-gzip", default=None, help="NIfTI as .nii.gz (default: msd yes, lits no)."
)
@click.option("--unit-spacing", help="Indices whose NIfTI header gets 1x1x1 mm (IRCAD-in-LiTS).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT.")
def phantom(
    out, layout, n_cases, seed, start, indices, size, slices, zipped, gzip, unit_spacing, overwrite
) -> None:
    """Write synthetic abdominal CT cases to OUT in the LiTS, Task03 or 3DIRCADb layout."""
    spec = PhantomSpec(
        layout,
        n_cases,
        seed,
        indices=_int_list(indices),
        start=start,
        size=size,
        slices=tuple(slices),
        zipped=zipped,
        gzip=gzip,
        unit_spacing=_int_list(unit_spacing) or (),
    )
    written = write_phantom(out, spec, overwrite=overwrite, progress=True)
    click.echo(f"wrote {len(written)} {layout} phantom cases (seed {seed}) to {out}")


@datasets.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Also write JSON here.")
def check(root, json_out) -> None:
    """Read every case under ROOT and list shape, spacing, HU range, labels and problems.

    A folder of reference labels only (no images) is checked without HU ranges.
    Exits 2 if any case cannot be read.
    """
    if json_out:
        check_output_file(json_out, inputs=[root])
    ds = open_dataset(root)
    images = ds.has_images
    click.echo(
        f"{root}: layout {ds.layout}, {len(ds)} cases" + ("" if images else " (labels only)")
    )
    rows, failures = [], []
    for cid in ds.case_ids():
        try:
            row = describe_case(ds.load(cid, image=images))
        except InputError as exc:
            failures.append((cid, exc))
            rows.append({"case": cid, "error": str(exc)})
            click.echo(f"  {cid}: UNREADABLE: {exc}")
            continue
        rows.append(row)
        sp = "x".join(f"{s:g}" for s in row["spacing"])
        hu = f"{row['dtype']} HU {row['hu_min']:g}..{row['hu_max']:g} " if images else ""
        click.echo(
            f"  {cid}: shape {'x'.join(map(str, row['shape']))} spacing {sp} mm "
            f"{hu}labels {row['label_values']} tumour {'yes' if row['tumour'] else 'no'}"
        )
        for p in row["problems"]:
            click.echo(f"    - {p}")
    if json_out:
        dump_json(
            json_out,
            {
                "root": str(root),
                "layout": ds.layout,
                "n_cases": len(ds),
                "n_unreadable": len(failures),
                "cases": rows,
            },
        )
    if failures:
        ids = ", ".join(cid for cid, _ in failures[:10]) + (" ..." * (len(failures) > 10))
        raise InputError(
            f"{len(failures)} of {len(ds)} cases unreadable ({ids}; each listed above); "
            f"first: {failures[0][1]}"
        )


@datasets.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT.")
def convert(root, out, overwrite) -> None:
    """Convert every case under ROOT to NIfTI pairs volume-<id>.nii.gz / segmentation-<id>.nii.gz."""
    ds = open_dataset(root)
    ids = convert_dataset(ds, out, overwrite=overwrite, progress=True)
    click.echo(f"converted {len(ids)} {ds.layout} cases to {out}")


@datasets.command(
    help=f"The paper's random train/validation split ({PAPER_TRAIN}/{PAPER_VALIDATION} of "
    f"{PAPER_TOTAL}; proportional otherwise)."
)
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--seed", type=int, required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the split JSON here.")
@click.option("--exclude", "exclude_ids", multiple=True, help="Case id to leave out (repeatable).")
@click.option(
    "--exclude-overlap",
    type=click.Path(path_type=Path),
    help="JSON from `datasets overlap -o`: leave its LiTS cases out (leak-free split).",
)
def split(root, seed, output, exclude_ids, exclude_overlap) -> None:
    if output:
        check_output_file(output, inputs=[root], read=[exclude_overlap] if exclude_overlap else [])
    ds = open_dataset(root)
    exclude = list(exclude_ids)
    if exclude_overlap:
        try:
            exclude += [m["lits"] for m in load_json(exclude_overlap)["matches"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not an overlap JSON ({exc})", path=exclude_overlap) from None
    result = make_split(ds.case_ids(), seed, exclude=exclude)
    result["root"], result["layout"] = str(root), ds.layout
    if output:
        dump_json(output, result)
    click.echo(json.dumps(result, indent=2))


@datasets.command()
@click.argument("lits_root", type=click.Path(path_type=Path))
@click.argument("ircadb_root", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write matches as JSON.")
@click.option(
    "--threshold",
    type=float,
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Minimum fingerprint correlation for a match.",
)
def overlap(lits_root, ircadb_root, output, threshold) -> None:
    """Find which LiTS cases are 3DIRCADb patients (slice count, shape, image content)."""
    if output:
        check_output_file(output, inputs=[lits_root, ircadb_root])
    lits, ircadb = open_dataset(lits_root), open_dataset(ircadb_root)
    matches = find_overlap(lits, ircadb, threshold=threshold, progress=True)
    for m in matches:
        click.echo(f"{m['lits']}\t{m['ircadb']}\tscore {m['score']:.4f}\t{m['orientation']}")
    click.echo(
        f"{len(matches)} of {len(ircadb)} 3DIRCADb patients found among {len(lits)} "
        f"{lits.layout} cases"
    )
    if output:
        dump_json(
            output,
            {
                "lits_root": str(lits_root),
                "ircadb_root": str(ircadb_root),
                "threshold": threshold,
                "matches": matches,
            },
        )


COMMANDS: list[click.Command] = [datasets]
BENCH_COMMANDS: list[click.Command] = []
