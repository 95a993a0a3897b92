"""The one way the package imports nibabel: with pydicom hidden from it.

nibabel imports pydicom whenever it is installed, only to parse the DICOM header a NIfTI file
may carry as an extension (code 2), which nothing here reads: about 60 ms of an `evaluate`'s
start, and a parser run on a stranger's bytes for nothing. Imported this way, nibabel keeps
such an extension as raw bytes; pydicom itself stays importable (the 3DIRCADb reader uses it).
Where pydicom was imported before nibabel, nibabel sees it as usual.
(`tests/house/test_light_imports.py`)
"""

from __future__ import annotations

import importlib
import sys
import types


def import_nibabel() -> types.ModuleType:
    """nibabel, imported (the first time) while `import pydicom` fails."""
    if "nibabel" in sys.modules or "pydicom" in sys.modules:
        return importlib.import_module("nibabel")
    sys.modules["pydicom"] = None  # type: ignore[assignment]  # import fails: ImportError
    try:
        return importlib.import_module("nibabel")
    finally:
        del sys.modules["pydicom"]
