"""cache=True: a second process reuses compiled code; edited source recompiles; corrupt entries rebuild."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys, time
    start = time.perf_counter()
    sys.path.insert(0, sys.argv[1])
    import fwdad, cached_module
    value, tangent = cached_module.f.jvp((1.5, 200), (1.0, None))
    unit = cached_module.f.unit
    spec = cached_module.f._last
    print(json.dumps({"value": value, "tangent": tangent,
                      "seconds": time.perf_counter() - start,
                      "primal_compiled": len(unit.primal.signatures),
                      "jvp_hits": sum(spec.jvp.stats.cache_hits.values()),
                      "jvp_misses": sum(spec.jvp.stats.cache_misses.values())}))
""")

MODULE = textwrap.dedent("""
    import math
    import fwdad

    def helper(x):
        return math.sin(x) * {factor}

    @fwdad.forward_grad(cache=True)
    def f(x, n):
        s = 0.0
        for i in range(n):
            s += helper(x * 0.01 * i)
        return s
""")


def run(directory, cache_dir):
    environment = dict(os.environ, FWDAD_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(directory)], capture_output=True,
                         text=True, env=environment, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(tmp_path):
    (tmp_path / "cached_module.py").write_text(MODULE.format(factor="2.0"))
    return tmp_path


def test_second_process_reuses_compiled_code(project):
    cache = project / "cache"
    first = run(project, cache)
    second = run(project, cache)
    assert first["jvp_misses"] == 1 and first["primal_compiled"] == 1
    assert second["jvp_hits"] == 1 and second["jvp_misses"] == 0
    assert second["primal_compiled"] == 0        # types came from fwdad's cache: no typing pass
    assert second["value"] == first["value"] and second["tangent"] == first["tangent"]


def test_edited_source_recompiles(project):
    cache = project / "cache"
    first = run(project, cache)
    (project / "cached_module.py").write_text(MODULE.format(factor="3.0"))
    second = run(project, cache)
    assert second["jvp_misses"] == 1
    assert second["value"] == pytest.approx(first["value"] * 1.5)
    assert second["tangent"] == pytest.approx(first["tangent"] * 1.5)


def corrupt(cache, suffixes, positions):
    """Flip bits at positions(len(data)) of every cache file ending in `suffixes`; how many."""
    corrupted = 0
    for root, _, files in os.walk(cache):
        for name in files:
            if name.endswith(suffixes):
                path = os.path.join(root, name)
                data = bytearray(open(path, "rb").read())
                for i in positions(len(data)):
                    data[i] ^= 0x5A
                open(path, "wb").write(bytes(data))
                corrupted += 1
    return corrupted


def test_corrupted_cache_entry_is_rebuilt(project):
    cache = project / "cache"
    first = run(project, cache)
    assert corrupt(cache, (".pkl",), lambda n: [n - 5])
    second = run(project, cache)
    assert second["primal_compiled"] == 1          # the corrupt types were not loaded: re-typed
    assert second["value"] == first["value"] and second["tangent"] == first["tangent"]


def test_corrupted_numba_cache_is_rebuilt_not_loaded(project):
    cache = project / "cache"
    first = run(project, cache)
    assert corrupt(cache, (".nbi", ".nbc"), lambda n: range(0, n, 7))
    second = run(project, cache)              # rebuilt, same numbers
    third = run(project, cache)               # and cached again
    assert second["jvp_misses"] == 1 and third["jvp_hits"] == 1
    assert first["value"] == second["value"] == third["value"]
    assert first["tangent"] == second["tangent"] == third["tangent"]
