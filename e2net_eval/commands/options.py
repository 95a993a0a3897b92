"""Options several commands share, with their choices taken from the catalogue.

Light on purpose: click and the torch-free catalogue (`reference_models.registry`) only.
"""

from __future__ import annotations

import re

import click

from e2net_eval.runtime import DEVICE_HELP
from reference_models.registry import list_profiles

#: What `--device` accepts; `e2net_eval.runtime.device.resolve_device` checks the card exists.
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceType(click.ParamType):
    """auto, cpu, cuda or cuda:N (the card's index)."""

    name = "device"

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        if not _DEVICE.match(text):
            self.fail(f"{value!r} is not a device ({DEVICE_HELP})", param, ctx)
        return text


def device_option(**kwargs):
    return click.option(
        "--device", type=DeviceType(), default="auto", show_default=True, help=DEVICE_HELP, **kwargs
    )


def profile_option(**kwargs):
    profiles = list_profiles()
    return click.option(
        "--profile",
        type=click.Choice(profiles),
        default=profiles[0],
        show_default=True,
        **kwargs,
    )
