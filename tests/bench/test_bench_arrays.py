"""`fwdad bench --only arrays`: every program has its rows, ratios to numba.njit and a spread,
and the printed table fits 100 columns (slow: it compiles three programs and their peers)."""
import contextlib
import io

import pytest

from fwdad.cli import main


@pytest.mark.slow
def test_arrays_section_rows_and_width(tmp_path):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["bench", "--quick", "--only", "arrays", "--out", str(tmp_path)]) == 0
    lines = printed.getvalue().splitlines()
    assert max(len(line) for line in lines[:-1]) <= 100
    text = "\n".join(lines)
    for benchmark in ("first call (compile), heat", "heat 64 T=30", "diffusion 32x32 T=10",
                      "paper MLP 784-1024-1024-10 b=64 f32"):
        assert benchmark in text
    for row in ("numba.njit primal", "fwdad primal", "fwdad JVP", "Numba JVP, fused by hand"):
        assert text.count(row) >= 3
    markdown = (tmp_path / "bench.md").read_text()
    assert "heat 64 T=30" in markdown and "spread" in markdown
