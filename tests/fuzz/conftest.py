"""The fuzz tests import their helpers (`fuzz_core`, `fuzz_nifti`, ...) from this folder."""
