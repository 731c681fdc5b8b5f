"""Golden source per pass: the doctests in each pass's module, and whole generated functions."""
import doctest
import importlib
import os

import numpy as np
import pytest

import fwdad
import golden_programs
from helpers import TESTS

PASSES = ["fwdad.frontend.fence", "fwdad.frontend.normalize", "fwdad.transform.naming",
          "fwdad.transform.tangent", "fwdad.transform.vector", "fwdad.transform.fuse",
          "fwdad.transform.elementwise", "fwdad.transform.scale", "fwdad.frontend.rebuild",
          "fwdad.transform.activity"]
GOLDEN = os.path.join(TESTS, "golden")


@pytest.mark.parametrize("module", PASSES)
def test_pass_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def without_header(source):
    """Generated source minus the two header lines (they name the file and a hash)."""
    return "\n".join(source.splitlines()[2:]) + "\n"


def generated():
    lorenz = fwdad.forward_grad(golden_programs.lorenz)
    energy = fwdad.forward_grad(golden_programs.energy)
    x = np.linspace(0.0, 1.0, 5)
    energy.value_and_grad(x, 2.0, 5)
    return {"lorenz_jvp.py": without_header(lorenz.source_for(10.0, 28.0, 2.5, 100)),
            "energy_jvp_vector.py": without_header(energy.source)}


@pytest.mark.parametrize("name", ["lorenz_jvp.py", "energy_jvp_vector.py"])
def test_generated_source_is_golden(name):
    text = generated()[name]
    path = os.path.join(GOLDEN, name)
    if os.environ.get("FWDAD_UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert text == f.read(), f"generated code changed; review and run with FWDAD_UPDATE_GOLDEN=1"
