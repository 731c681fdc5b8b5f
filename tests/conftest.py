import os
import sys

import numpy as np
import pytest

sys.path[:0] = [os.path.join(os.path.dirname(__file__), folder)       # as pyproject's pythonpath,
                for folder in ("", "programs", "rules", "fuzz")]           # for older pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20260226)


def pytest_addoption(parser):
    """Options of the long fuzz profile: pytest -m fuzz_long --fuzz-examples=N (tests/fuzz/test_fuzz.py)."""
    group = parser.getgroup("fuzz", "differential fuzzing (tests/fuzz/test_fuzz.py)")
    group.addoption("--fuzz-examples", type=int, default=2000, help="programs in the long profile")
    group.addoption("--fuzz-seed", type=int, default=0, help="seed of the long profile")
    group.addoption("--fuzz-shrink", action="store_true",
                    help="stop at the first failure and minimize it (default: collect them all)")
    group.addoption("--fuzz-jobs", type=int, default=1, help="child processes of the long profile at a time")
    group.addoption("--fuzz-size", choices=["full", "fast"], default="full",
                    help="program size of the long profile: full, or the fast profile's smaller programs")
    group.addoption("--fuzz-report", default=None, help="write the long profile's failures to this file")
    group.addoption("--fuzz-flavor", choices=["user", "mixed", "loops", "vector"], default=None,
                    help="flavor of the long profile's programs (default: drawn); user: the forms of issue 13")
