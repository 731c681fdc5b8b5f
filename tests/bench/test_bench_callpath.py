"""`fwdad bench --only callpath`: the per-call overhead rows of each method beside its compiled
code, the Rosenbrock rows and the first-call rows, in 100 columns (slow: fresh processes)."""
import contextlib
import io
import json

import pytest

from fwdad.cli import main


@pytest.mark.slow
def test_callpath_section_rows_and_width(tmp_path):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["bench", "--quick", "--only", "callpath", "--out", str(tmp_path)]) == 0
    lines = printed.getvalue().splitlines()
    assert max(len(line) for line in lines[:-1]) <= 100
    data = json.loads((tmp_path / "bench.json").read_text())
    rows = data.get("table", data)["rows"]            # {"table": ...} when a section adds results
    overhead = [r for r in rows if r["benchmark"].startswith("call overhead")]
    assert sorted({r["implementation"] for r in overhead}) == ["f(...)", "f.forward_gradient", "f.jvp",
                                                              "f.value_and_grad"]
    assert all(r["direct_time"] > 0 and r["seconds"] > 0 for r in overhead)
    first = {r["implementation"] for r in rows if r["benchmark"] == "first call (fresh process), lorenz_rk4"}
    assert first == {"numba.njit primal", "fwdad f(...) then f.jvp", "fwdad value_and_grad"}
    assert any(r["benchmark"].startswith("rosenbrock n=") and r["implementation"] == "fwdad f.jvp" for r in rows)
