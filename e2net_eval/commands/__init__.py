"""The command-line layer: each module parses arguments and calls down into one stage.

Each module exposes ``COMMANDS`` (top-level click commands or groups) and ``BENCH_COMMANDS``
(subcommands of ``e2net-eval bench``); ``e2net_eval.cli`` maps each command name to its
module and imports it on first use, so a module keeps heavy imports inside its commands. Nothing outside
this package and ``cli.py`` imports from here.
"""
