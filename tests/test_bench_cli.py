"""`fwdad bench --quick` runs and produces a well-formed table, JSON and Markdown."""
import json

import pytest

from fwdad.cli import main


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    return out


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
