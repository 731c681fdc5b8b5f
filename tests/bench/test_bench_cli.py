"""`fwdad bench --quick` runs and produces a well-formed table, JSON and Markdown."""
import contextlib
import io
import json
import os
import warnings

import pytest

from fwdad.bench.suites import torch_script_warning_silenced
from fwdad.cli import main


def run_bench(out, *options):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["bench", "--quick", "--out", str(out), *options]) == 0
    (out / "printed.txt").write_text(printed.getvalue())
    return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The sections the paper's figures come from; sparse and second run in a slow test."""
    return run_bench(tmp_path_factory.mktemp("bench"), "--only", "jvp,fgd,vector,memory,compile")


@pytest.mark.slow
def test_sparse_and_second_order_sections_fit_100_columns(tmp_path):
    printed = (run_bench(tmp_path, "--only", "sparse,second") / "printed.txt").read_text().splitlines()
    assert max(len(line) for line in printed[:-1]) <= 100
    text = "\n".join(printed)
    for row in ("sparse jacobian (fwdad)", "fwdad sparse jac=", "jvp2 (fwdad)", "hessian (fwdad, dense)",
                "hessian (fwdad, sparse=True)"):
        assert row in text, row


def test_bench_output_fits_100_columns_and_says_where_it_wrote(bench):
    printed = (bench / "printed.txt").read_text().splitlines()
    assert max(len(line) for line in printed[:-1]) <= 100          # the last line: a path
    assert printed[-2:] == ["fwdad bench: wrote bench.json, bench.md, bench_memory.png, cache/ to",
                            f"  {bench}"]
    assert os.path.isabs(str(bench)) and (bench / "bench_memory.png").stat().st_size > 10_000
    text = "\n".join(printed)
    assert "JVP time  vs numba" in text and "time/step  vs numba" in text
    for legend in ("R_f = JVP time / primal", "vs numba = JVP time / JVP time of 'numba'",
                   "steps/s = 1 / time/step", "MiB: working memory of one call"):
        assert legend in " ".join(text.split()), legend


def test_only_the_known_torch_warning_is_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch_script_warning_silenced():
            warnings.warn("`torch.jit.script` is deprecated. Please switch to `torch.compile` or "
                          "`torch.export`.", DeprecationWarning)
            warnings.warn("`torch.jit.script` is not supported in Python 3.14+ and may break.",
                          FutureWarning)
            warnings.warn("something else is deprecated", DeprecationWarning)
    assert [str(w.message) for w in caught] == ["something else is deprecated"]


def test_bench_writes_a_complete_table(bench):
    data = json.loads((bench / "bench.json").read_text())
    rows = data["table"]["rows"]
    benchmarks = {r["benchmark"] for r in rows}
    for prefix in ("rosenbrock", "lorenz_euler", "lorenz_rk4", "mlp", "fgd beale", "fgd rosenbrock2",
                   "gradient rosenbrock", "memory T=", "first call"):
        assert any(b.startswith(prefix) for b in benchmarks), prefix
    fwdad_rows = [r for r in rows if r["implementation"] in ("fwdad", "fwdad.fgd")]
    assert len(fwdad_rows) >= 6 and all(r["seconds"] > 0 for r in fwdad_rows)
    assert all(r["R_f"] > 0.5 for r in rows if r["implementation"] == "fwdad" and "R_f" in r)
    memory = data["memory"]["peak_mib"]
    assert all(m is not None and m >= 0 for m in memory["fwdad"])     # forward mode: about 0 MiB
    markdown = (bench / "bench.md").read_text()
    assert markdown.count("|") > 50 and "fwdad" in markdown


def test_bench_refuses_unknown_sections(tmp_path):
    with pytest.raises(SystemExit, match="unknown sections"):
        main(["bench", "--only", "jvps", "--out", str(tmp_path)])
