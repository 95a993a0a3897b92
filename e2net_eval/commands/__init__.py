"""The command-line layer: each module parses arguments and calls down into one stage.

Each module exposes ``COMMANDS`` (top-level click commands or groups) and ``BENCH_COMMANDS``
(subcommands of ``e2net-eval bench``); ``e2net_eval.cli`` registers them. Nothing outside
this package and ``cli.py`` imports from here.
"""
