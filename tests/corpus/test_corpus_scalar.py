"""The compiler core's corpus: primal vs CPython, JVP vs central differences."""
import numpy as np
import pytest

import fwdad
from corpus_scalar import CASES
from helpers import check_jvp


@pytest.mark.parametrize("function, make_args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_corpus(function, make_args, rng):
    check_jvp(fwdad.forward_grad(function), make_args(rng), rng)


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
