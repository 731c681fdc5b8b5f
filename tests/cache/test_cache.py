"""cache=True: a second process reuses compiled code; the key is content, never names; nothing
read from disk is unpickled or run unchecked; an unsafe or unwritable directory means no cache."""
import hashlib
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import sysconfig
import textwrap
import warnings

import numpy as np
import pytest
from numba.core import types

import fwdad
from fwdad import cache as disk_cache
from fwdad.compiler import Compiler
from fwdad.errors import CacheWarning
from fwdad.frontend.activity import FunctionTypes, Kind

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
                      "typed": unit.numba_typings,
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


def run_script(script, directory, cache_dir, **extra_environment):
    environment = dict(os.environ, FWDAD_CACHE_DIR=str(cache_dir), **extra_environment)
    out = subprocess.run([sys.executable, "-c", script, str(directory)], capture_output=True,
                         text=True, env=environment)
    assert out.returncode == 0, f"exit status {out.returncode}\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def run(directory, cache_dir):
    return run_script(SCRIPT, directory, cache_dir)[0]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "cached_module.py").write_text(MODULE.format(factor="2.0"))
    return tmp_path


def test_second_process_reuses_compiled_code(project):
    cache = project / "cache"
    first = run(project, cache)
    second = run(project, cache)
    assert first["jvp_misses"] == 1 and first["typed"] == 1
    assert first["primal_compiled"] == 0         # f.jvp types the primal, never compiles it
    assert second["jvp_hits"] == 1 and second["jvp_misses"] == 0
    assert second["typed"] == 0                  # types came from fwdad's cache: no typing pass
    assert second["value"] == first["value"] and second["tangent"] == first["tangent"]


def test_edited_source_recompiles(project):
    cache = project / "cache"
    first = run(project, cache)
    (project / "cached_module.py").write_text(MODULE.format(factor="3.0"))
    second = run(project, cache)
    assert second["jvp_misses"] == 1
    assert second["value"] == pytest.approx(first["value"] * 1.5)
    assert second["tangent"] == pytest.approx(first["tangent"] * 1.5)


DRIVER_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import fwdad, cached_module
    from fwdad.drivers.gradients import exact_gradient_driver, forward_gradient_driver
    f = cached_module.f
    value, (grad, _) = f.value_and_grad(1.5, 200)
    gradient = f.forward_gradient(1.5, 200, seed=3)[1][0]
    args, active = (1.5, 200), [0]
    scalar, vector = f.specialization(args, active), f.specialization(args, active, "vector")
    drivers = [exact_gradient_driver(f.backend, scalar, vector, False)[0],
               forward_gradient_driver(f.backend, scalar, vector, 1)[0]]
    print(json.dumps({"value": value, "grad": grad, "gradient": gradient,
                      "hits": [sum(d.stats.cache_hits.values()) for d in drivers],
                      "misses": [sum(d.stats.cache_misses.values()) for d in drivers]}))
""")


@pytest.mark.slow                                    # two processes compile and load drivers
def test_second_process_reuses_the_drivers(project):
    """value_and_grad's and forward_gradient's drivers are cached too (they were compiled again in
    every process, and with them the tangent code they call)."""
    cache = project / "cache"
    first = run_script(DRIVER_SCRIPT, project, cache)[0]
    second = run_script(DRIVER_SCRIPT, project, cache)[0]
    assert first["misses"] == [1, 1] and second["hits"] == [1, 1] and second["misses"] == [0, 0]
    assert second["value"] == first["value"] and second["grad"] == first["grad"]
    assert second["gradient"] == first["gradient"]


def cache_files(cache, suffixes, folder=""):
    return [os.path.join(root, name) for root, _, files in os.walk(cache) for name in files
            if name.endswith(suffixes) and folder in root]


def rewrite(path, change):
    """Replace the bytes of `path` by change(bytes), keeping its size and modification time."""
    status = os.stat(path)
    data = bytearray(open(path, "rb").read())
    change(data)
    open(path, "wb").write(bytes(data))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))


def flip(positions):
    def change(data):
        for i in positions(data):
            data[i] ^= 0x5A
    return change


def test_corrupted_cache_entry_is_rebuilt(project):
    cache = project / "cache"
    first = run(project, cache)
    types_files = cache_files(cache, (".json",), "types")
    assert types_files
    for path in types_files:
        rewrite(path, flip(lambda data: [len(data) - 5]))
    second = run(project, cache)
    assert second["typed"] == 1                    # the corrupt types were not loaded: re-typed
    assert second["value"] == first["value"] and second["tangent"] == first["tangent"]


def test_corrupted_numba_cache_is_rebuilt_not_loaded(project):
    cache = project / "cache"
    first = run(project, cache)
    numba_files = cache_files(cache, (".nbi", ".nbc"))
    assert numba_files
    for path in numba_files:
        rewrite(path, flip(lambda data: range(0, len(data), 7)))
    second = run(project, cache)              # rebuilt, same numbers
    third = run(project, cache)               # and cached again
    assert second["jvp_misses"] == 1 and third["jvp_hits"] == 1
    assert first["value"] == second["value"] == third["value"]
    assert first["tangent"] == second["tangent"] == third["tangent"]


def machine_code_offsets(data):
    """Offsets inside the executable sections of every ELF object embedded in a Numba data file."""
    offsets, start = [], data.find(b"\x7fELF")
    while start >= 0:
        section_table, = struct.unpack_from("<Q", data, start + 0x28)
        entry_size, count = struct.unpack_from("<HH", data, start + 0x3A)
        for k in range(count):
            header = start + section_table + k * entry_size
            if header + 40 <= len(data):
                flags, _, offset, size = struct.unpack_from("<QQQQ", data, header + 8)
                if flags & 0x4 and size >= 16:                  # SHF_EXECINSTR
                    offsets.extend(start + offset + size * q // 8 for q in range(1, 8))
        start = data.find(b"\x7fELF", start + 4)
    return offsets


@pytest.mark.skipif(sys.platform != "linux", reason="ELF object code")
def test_flipped_machine_code_is_rebuilt_never_run(project):
    """Two bytes flipped in the compiled code, size and mtime kept: Numba itself cannot tell, and
    loading it crashed every later run (SIGSEGV). fwdad's manifest catches it before Numba loads."""
    cache = project / "cache"
    first = run(project, cache)
    flipped = 0
    for path in cache_files(cache, (".nbc",)):
        def change(data):
            for i in machine_code_offsets(bytes(data)):
                data[i] ^= 0xFF
                data[i + 1] ^= 0xFF
        rewrite(path, change)
        flipped += 1
    assert flipped >= 2
    second = run(project, cache)              # asserts the exit status is 0 (no segfault)
    assert second["jvp_misses"] == 1 and second["value"] == first["value"]
    assert second["tangent"] == first["tangent"]


def test_type_files_are_never_unpickled(project):
    """Whoever can write the cache directory must not run code through fwdad's type files."""
    cache = project / "cache"
    first = run(project, cache)
    marker = project / "pwned"
    payload = pickle.dumps(Exploit(str(marker)))
    planted = 0
    for root, _, files in os.walk(cache):
        for name in files:
            if os.path.basename(root) == "types":      # any format: a pickle with a valid checksum
                open(os.path.join(root, name), "wb").write(hashlib.sha256(payload).digest() + payload)
                planted += 1
    assert planted
    second = run(project, cache)
    assert not marker.exists()
    assert second["value"] == first["value"] and second["tangent"] == first["tangent"]


class Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---- the key is content, never names -------------------------------------------------------------
SAME_NAMES = {
    "act_tanh.py": "import numpy as np\nact = np.tanh\n\ndef f(x):\n    return act(x) * 2.0\n",
    "act_sin.py": "import numpy as np\nact = np.sin\n\ndef f(x):\n    return act(x) * 2.0\n",
    "settings.py": "SCALE = {scale}\n",
    "reads_settings.py": "import settings\n\ndef g(x):\n    return settings.SCALE * x * x\n",
    "alias.py": "import numpy as np\nACT = np.{act}\n\ndef h(x):\n    return ACT(x) + 1.0\n",
}

SAME_NAMES_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np, fwdad
    import act_tanh, act_sin, reads_settings, settings, alias
    results = {}
    for name, func in [("tanh", act_tanh.f), ("sin", act_sin.f), ("settings", reads_settings.g),
                       ("alias", alias.h)]:
        f = fwdad.forward_grad(func, cache=True)
        results[name] = [f(0.5), *f.jvp((0.5,), (1.0,))]
    print(json.dumps(results))
""")


def write_same_names(directory, scale, act):
    for name, text in SAME_NAMES.items():
        (directory / name).write_text(text.format(scale=scale, act=act))


def test_the_key_is_what_the_function_reads_not_its_name(tmp_path):
    """Equal names and sources with other globals (in one process), and a module attribute or an
    alias changed between processes: each primal and JVP is that of the code as it is now."""
    cache = tmp_path / "cache"
    write_same_names(tmp_path, 2.0, "tanh")
    first = run_script(SAME_NAMES_SCRIPT, tmp_path, cache)[0]
    write_same_names(tmp_path, 3.0, "sin")
    second = run_script(SAME_NAMES_SCRIPT, tmp_path, cache)[0]
    x = 0.5
    assert first["tanh"] == pytest.approx([2 * np.tanh(x), 2 * np.tanh(x), 2 / np.cosh(x) ** 2])
    assert first["sin"] == pytest.approx([2 * np.sin(x), 2 * np.sin(x), 2 * np.cos(x)])
    assert first["settings"] == pytest.approx([2 * x * x, 2 * x * x, 4 * x])
    assert second["settings"] == pytest.approx([3 * x * x, 3 * x * x, 6 * x])
    assert first["alias"] == pytest.approx([np.tanh(x) + 1, np.tanh(x) + 1, 1 / np.cosh(x) ** 2])
    assert second["alias"] == pytest.approx([np.sin(x) + 1, np.sin(x) + 1, np.cos(x)])


@pytest.mark.parametrize("a, b", [
    (np.tanh, np.sin), (2.0, 3.0), (2, 2.0), (np.float32(1), np.float64(1)),
    (np.arange(3.0), np.arange(3.0) + 1), (np.zeros(3), np.zeros(4)), (np.zeros(3), np.zeros(3, np.float32)),
    ((1.0, 2.0), (1.0, 3.0)), (np, np.linalg), (disk_cache.fingerprint, disk_cache.environment),
])
def test_fingerprints_tell_apart_what_numba_would_freeze_differently(a, b):
    assert disk_cache.fingerprint(a) != disk_cache.fingerprint(b)
    assert disk_cache.fingerprint(a) == disk_cache.fingerprint(a.copy() if isinstance(a, np.ndarray) else a)


DIGEST_CASES = {
    "a default value": "K = {v}\n\ndef f(x, k=K):\n    return x * k\n",
    "a constant array's content": "import numpy as np\nW = np.full(3, {v})\n\ndef f(x):\n    return x * W[0]\n",
    "a closure variable": "def make(k):\n    def f(x):\n        return x * k\n    return f\n\nf = make({v})\n",
    "a module attribute chain": ("import types\ncfg = types.ModuleType('cfg')\ncfg.inner = types.ModuleType('inner')\n"
                                 "cfg.inner.S = {v}\n\ndef f(x):\n    return x * cfg.inner.S\n"),
    "a callee's global": "A = {v}\n\ndef g(x):\n    return x * A\n\ndef f(x):\n    return g(x) + 1.0\n",
}


def digest_of(tmp_path, name, text):
    import importlib.util
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Compiler().unit(module.f).digest


@pytest.mark.parametrize("case", sorted(DIGEST_CASES))
def test_the_key_changes_with_what_the_function_reads(tmp_path, case):
    """In-process form of the test above: the same file rewritten with another value."""
    first = digest_of(tmp_path, "digest_case", DIGEST_CASES[case].format(v="2.0"))
    second = digest_of(tmp_path, "digest_case", DIGEST_CASES[case].format(v="3.0"))
    again = digest_of(tmp_path, "digest_case", DIGEST_CASES[case].format(v="2.0"))
    assert first != second and first == again


# ---- type information as JSON ------------------------------------------------------------------
def example_types():
    array = types.Array(types.float64, 2, "F", readonly=True)
    return FunctionTypes(
        {"x": Kind("array", "float64", 2), "t": Kind("tuple", items=(Kind("scalar", "float32"), None))},
        {"x": array, "n": types.int64, "b": types.boolean, "t": types.Tuple((types.float32, types.int64)),
         "u": types.UniTuple(types.float64, 3), "v": types.Array(types.float32, 1, "A", aligned=False)},
        Kind("scalar", "float64"), (array, types.int64), types.float64)


def test_types_round_trip_through_json():
    original = example_types()
    text = disk_cache.encode_types(original)
    assert disk_cache.decode_types(text, original.arg_types) == original
    assert disk_cache.decode_types(text, (types.int64,)) is None          # other arguments: not used


def test_tampered_or_unknown_types_are_not_loaded():
    original = example_types()
    stored = json.loads(disk_cache.encode_types(original))
    stored["payload"]["numba_types"]["n"] = "int32"                       # checksum no longer holds
    assert disk_cache.decode_types(json.dumps(stored), original.arg_types) is None
    stored["payload"]["numba_types"]["n"] = ["os.system", "rm -rf ~"]      # checksum fixed: whitelist
    text = json.dumps(stored["payload"], sort_keys=True)
    stored["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    assert disk_cache.decode_types(json.dumps(stored), original.arg_types) is None


def test_types_outside_the_plain_set_are_not_stored():
    exotic = example_types()
    exotic.numba_types["r"] = types.range_state64_type
    assert disk_cache.encode_types(exotic) is None


# ---- the directory -----------------------------------------------------------------------------
def cache_dir_of_new_compiler(monkeypatch, directory):
    monkeypatch.setenv("FWDAD_CACHE_DIR", str(directory))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = Compiler(cache=True), Compiler(cache=True)
    assert first.cache_dir == second.cache_dir
    return first.cache_dir, [w for w in caught if issubclass(w.category, CacheWarning)]


def test_a_private_directory_is_used(tmp_path, monkeypatch):
    directory, warned = cache_dir_of_new_compiler(monkeypatch, tmp_path / "fresh")
    assert directory is not None and not warned
    assert os.stat(tmp_path / "fresh").st_mode & 0o077 == 0


@pytest.mark.parametrize("problem", ["group or world writable", "another user's", "not a directory", "read only"])
def test_an_unsafe_or_unwritable_directory_is_refused_with_one_warning(tmp_path, monkeypatch, problem):
    directory = tmp_path / "cache"
    directory.mkdir()
    if problem == "group or world writable":
        directory.chmod(0o777)
    elif problem == "read only":
        if not hasattr(os, "geteuid") or os.geteuid() == 0:
            pytest.skip("needs a POSIX user other than root (root writes anywhere)")
        directory.chmod(0o500)
    elif problem == "another user's":
        if not hasattr(os, "getuid"):
            pytest.skip("no user ids")
        monkeypatch.setattr(os, "getuid", lambda: os.stat(directory).st_uid + 1)
    else:
        directory.rmdir()
        directory.write_text("a file where the directory should be")
        directory = directory / "fwdad"
    used, warned = cache_dir_of_new_compiler(monkeypatch, directory)
    assert used is None and len(warned) == 1
    assert "runs without the on-disk cache" in str(warned[0].message)
    assert "What to do:" in str(warned[0].message)


def test_an_unwritable_directory_runs_without_the_cache(project):
    blocker = project / "blocker"
    blocker.write_text("a file where the cache directory should be")
    result, stderr = run_script(SCRIPT, project, blocker / "cache")
    assert result["value"] == pytest.approx(265.1862378721017)
    assert stderr.count("CacheWarning") == 1


IMPORT_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    import fwdad
    assert fwdad.__file__.startswith(sys.argv[1]), fwdad.__file__
    warnings.simplefilter("always")
    v = fwdad.random.direction(3, 0, (5,))
    def square(x):
        return x * x
    value, tangent = fwdad.jvp(square, (3.0,), (1.0,))
    f = fwdad.forward_grad(square, cache=True)
    print(json.dumps({"value": value, "tangent": tangent, "cached": f(2.0), "v": v.tolist()}))
""")


@pytest.mark.slow
def test_import_and_cache_true_need_no_writable_directory(tmp_path):
    """A read-only install and no writable HOME: `import fwdad` works, cache=True runs uncached."""
    package = tmp_path / "site" / "fwdad"
    shutil.copytree(os.path.dirname(fwdad.__file__), package, ignore=shutil.ignore_patterns("__pycache__"))
    for root, _, _ in os.walk(package):              # Numba cannot cache next to fwdad's files
        open(os.path.join(root, "__pycache__"), "w").close()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where HOME should be")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CACHE", "FWDAD_CACHE"))}
    environment.update(HOME=str(blocker / "home"), XDG_CACHE_HOME=str(blocker / "cache"),
                       PYTHONPATH=os.pathsep.join([str(package.parent), sysconfig.get_paths()["purelib"],
                                                   sysconfig.get_paths()["platlib"]]))
    (tmp_path / "program.py").write_text(IMPORT_SCRIPT)
    out = subprocess.run([sys.executable, "-S", str(tmp_path / "program.py"), str(package)],
                         capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["value"] == 9.0 and result["tangent"] == 6.0 and result["cached"] == 4.0
    assert result["v"] == fwdad.random.direction(3, 0, (5,)).tolist()
    assert out.stderr.count("CacheWarning") == 1
