"""`e2net-eval models`: list the catalogue's network configurations with their sizes and costs."""

from __future__ import annotations

from pathlib import Path

import click

from e2net_eval.commands.options import profile_option
from e2net_eval.util.jsonio import dump_json
from reference_models import create_model, list_models


def _cells(r: dict) -> dict[str, str]:
    """One row of the printed table, by column title."""
    return {
        "name": r["name"],
        "stage": str(r["stage"]),
        "outputs": f"{'+'.join(r['outputs'])} x{r['out_channels']}",
        "edge target": r["edge_target"],
        "dcff": "yes" if r["dcff"] else "no",
        "input": f"{r['context']}x{r['input_size']}x{r['input_size']}",
        "params": f"{r['params'] / 1e6:.3f} M",
        "encoder": f"{r['n_encoders']} x {r['encoder_params'] / r['n_encoders'] / 1e6:.3f} M",
        "MACs/slice": f"{r['macs'] / 1e9:.3f} G",
    }


def _table(rows: list[dict]) -> str:
    cells = [_cells(r) for r in rows]
    lines = [tuple(cells[0]), *(tuple(c.values()) for c in cells)]
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines
    )


@click.command("models")
@profile_option(help="Network sizes (see the catalogue: reference_models/registry.py).")
@click.option(
    "--context",
    type=click.Choice(["1", "3", "5"]),
    default="1",
    show_default=True,
    help="Adjacent slices stacked as input channels (1 is the paper).",
)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=None,
    help="Count MACs at SIZE x SIZE instead of each configuration's training input size.",
)
@click.option(
    "--backbone-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Check that this local Res2Net-50 checkpoint loads into every encoder.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the table as JSON to this file.",
)
def models_command(profile, context, size, backbone_weights, json_path) -> None:
    """List the configurations of Table 3 with parameter counts and multiply-adds per slice.

    MACs count convolutions at batch 1 (stage 1: a crop of the input size; stage 2: the
    resized liver crop); parameters are trainable weights of the whole network.
    """
    import torch

    from e2net_eval.runtime.weights import load_backbone
    from reference_models.complexity import describe

    rows = []
    for name in list_models():
        # Counting needs no weights: build on the meta device unless a checkpoint is checked.
        device = "cpu" if backbone_weights is not None else "meta"
        with torch.device(device):
            model = create_model(name, profile, context=int(context))
        if backbone_weights is not None:
            load_backbone(model, backbone_weights)
        rows.append(describe(model, size))
    click.echo(f"profile {profile}, context {context}")
    click.echo(_table(rows))
    if backbone_weights is not None:
        click.echo(f"backbone weights {backbone_weights}: load into every encoder")
    if json_path is not None:
        dump_json(json_path, {"profile": profile, "context": int(context), "models": rows})


COMMANDS: list[click.Command] = [models_command]
BENCH_COMMANDS: list[click.Command] = []
