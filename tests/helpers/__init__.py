"""Helpers shared by the tests, imported one way: `from tests.helpers.MODULE import NAME`.

A subprocess that imports them gets the repository root on its PYTHONPATH environment
variable; no test edits the interpreter's module search path."""
