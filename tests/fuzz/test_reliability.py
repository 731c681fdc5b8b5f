"""Bad input and concurrency: right answers or clear errors, never a modified input."""
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fwdad
import reliability_programs as programs
from helpers import PROGRAMS, central_difference


def test_non_contiguous_arrays():
    f = fwdad.forward_grad(programs.weighted_sum)
    base = np.linspace(0.1, 2.0, 20)
    x, w = base[::2], base[::-2]                     # strided, one of them reversed
    dx = np.cos(base)[::2]
    value, tangent = f.jvp((x, w), (dx, None))
    assert value == pytest.approx(programs.weighted_sum(x, w))
    assert tangent == pytest.approx(central_difference(programs.weighted_sum, (x, w), (dx, None)), rel=1e-6)
    F = np.asfortranarray(np.ones((3, 3)))[:, 0]
    assert f.jvp((F, F), (F, F))[0] == pytest.approx(3 * np.sin(1.0))


def test_zero_dimensional_and_empty_arrays():
    f = fwdad.forward_grad(programs.scale_0d)
    value, tangent = f.jvp((np.array(0.5), 2.0), (np.array(1.0), 0.0))
    assert float(value) == pytest.approx(1.0 + np.sin(0.5)) and float(tangent) == pytest.approx(2.0 + np.cos(0.5))
    g = fwdad.forward_grad(programs.weighted_sum)
    assert g.jvp((np.zeros(0), np.zeros(0)), (np.zeros(0), None)) == (0.0, 0.0)


def test_nan_and_inf_inputs_propagate_without_crashing():
    f = fwdad.forward_grad(programs.weighted_sum)
    for bad in (np.nan, np.inf):
        x = np.array([0.5, bad])
        value, tangent = f.jvp((x, np.ones(2)), (np.ones(2), None))
        assert np.isnan(value) and np.isnan(tangent)


def test_a_call_that_writes_its_argument_inside_a_condition_is_refused_at_its_line():
    with pytest.raises(fwdad.DifferentiationError, match=r"reliability_programs.py:\d+[\s\S]*inside a condition"):
        fwdad.forward_grad(programs.writes_inside_a_condition).jvp((1.0, np.ones(3)), (1.0, np.ones(3)))
    x, dx = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    value, tangent = fwdad.forward_grad(programs.writes_on_its_own_line).jvp((1.0, x.copy()), (1.0, dx.copy()))
    assert value == programs.writes_on_its_own_line(1.0, x.copy())
    assert tangent == pytest.approx(central_difference(programs.writes_on_its_own_line, (1.0, x), (1.0, dx)))


def test_threads_compile_once_and_agree():
    f = fwdad.forward_grad(programs.slow_square_sum)
    x = np.linspace(0, 1, 50)
    results, errors = [], []

    def work():
        try:
            results.append(f.jvp((x,), (np.ones(50),)))
        except Exception as error:            # pragma: no cover - reported below
            errors.append(error)
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    assert all(r == results[0] for r in results)
    assert results[0][1] == pytest.approx(np.sum(2 * x))
    assert len(f.unit.specializations) == 1
    assert len(f.unit.types) == 1 and len(f._last.jvp.signatures) == 1    # typed once, compiled once
    assert len(f.unit.primal.signatures) <= 1        # f(...)'s primal: compiled only where it types


CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np, fwdad, reliability_programs as p
    f = fwdad.forward_grad(p.slow_square_sum, cache=True)
    value, tangent = f.jvp((np.linspace(0, 1, 50),), (np.ones(50),))
    print(json.dumps({"value": value, "tangent": tangent, "typed": len(f.unit.primal.signatures)}))
""")


def test_two_processes_fill_the_cache_at_once(tmp_path):
    environment = dict(os.environ, FWDAD_CACHE_DIR=str(tmp_path / "cache"))
    here = PROGRAMS
    launch = lambda: subprocess.Popen([sys.executable, "-c", CHILD, here], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=environment)
    first, second = launch(), launch()
    outputs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in (first, second)]
    third = launch()
    outputs.append(json.loads(third.communicate(timeout=300)[0].strip().splitlines()[-1]))
    assert outputs[0]["value"] == outputs[1]["value"] == outputs[2]["value"]
    assert outputs[0]["tangent"] == outputs[1]["tangent"] == outputs[2]["tangent"]
    assert outputs[2]["typed"] == 0                     # the third process typed nothing: cache hit
    leftovers = [n for _, _, files in os.walk(tmp_path) for n in files if n.endswith(".tmp")]
    assert not leftovers                                # atomic writes leave no partial files
