"""Small phantom datasets shared by the data tests (written once per session)."""

from __future__ import annotations

import pytest

from e2net_eval.data.phantom import PhantomSpec, write_phantom
from tests.helpers.phantom_data import N_LITS, SEED, SIZE, SLICES


@pytest.fixture(scope="session")
def layout_phantoms(tmp_path_factory):
    """Folders: lits (8 cases, .nii), lits_gz, msd (3), ircadb and ircadb_zip (3 patients)."""
    root = tmp_path_factory.mktemp("phantom")
    kw = {"seed": SEED, "size": SIZE, "slices": SLICES}
    write_phantom(root / "lits", PhantomSpec("lits", N_LITS, unit_spacing=[2], **kw))
    write_phantom(root / "lits_gz", PhantomSpec("lits", 2, gzip=True, **kw))
    write_phantom(root / "msd", PhantomSpec("msd", 3, **kw))
    write_phantom(root / "ircadb", PhantomSpec("ircadb", indices=[2, 1, 5], **kw))
    write_phantom(root / "ircadb_zip", PhantomSpec("ircadb", indices=[2, 1, 5], zipped=True, **kw))
    return root
