"""fwdad.distributed: 2 ranks under `mpiexec -n 2` on loopback against single-process fgd.

The MPI runs launch tests/training/mpi_scripts/fgd_ranks.py (one scenario per run) and read what each
rank saved or printed. They skip when mpi4py or mpiexec is missing, unless FWDAD_REQUIRE_MPI=1
(CI sets it, so that a broken MPI install fails instead of skipping). The other tests need no
MPI: the fallbacks, the mismatch/hash logic and the message layout.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time

import numpy as np
import pytest

import fwdad
from fwdad import distributed
from fwdad.errors import FwdadError
from helpers import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mpi_scripts", "fgd_ranks.py")


def load_scenarios():
    spec = importlib.util.spec_from_file_location("fgd_ranks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scenarios = load_scenarios()


def find_mpiexec():
    """The `mpich` wheel's mpiexec (this Python's scripts folder, or the user scheme's for
    `pip install --user`), else the first one on PATH."""
    folders = [os.path.dirname(sys.executable), sysconfig.get_path("scripts")]
    try:
        folders.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        pass
    for folder in folders:
        candidate = os.path.join(folder, "mpiexec")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mpiexec")


def importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def mpiexec_or_skip():
    missing = [name for name, found in (("mpi4py", importable("mpi4py")),
                                        ("mpiexec", find_mpiexec())) if not found]
    if missing:
        message = f"{' and '.join(missing)} not installed (pip install 'fwdad[mpi]')"
        if os.environ.get("FWDAD_REQUIRE_MPI") == "1":
            pytest.fail(message + ", and FWDAD_REQUIRE_MPI=1")
        pytest.skip(message)
    return find_mpiexec()


def mpirun(scenario, out, ranks=2, timeout=150):
    """Run one scenario on `ranks` ranks; (completed process, seconds)."""
    mpiexec = mpiexec_or_skip()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    start = time.monotonic()
    proc = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, SCRIPT, scenario, str(out)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(out))
    return proc, time.monotonic() - start


def lines_of(out, what):
    """{rank: message} from the `WHAT Error: message` lines each rank wrote to OUTDIR/rank<r>.txt."""
    found = {}
    for rank in range(2):
        path = out / f"rank{rank}.txt"
        for line in (path.read_text().splitlines() if path.exists() else []):
            head, _, message = line.partition(" ")
            if head == what:
                found[rank] = message
    return found


# ---- 2 ranks vs 1 process ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi_equal")
    proc, _ = mpirun("equal", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {name: [np.load(out / f"{name}.rank{r}.npz") for r in range(2)] for name in scenarios.CASES}


@pytest.mark.parametrize("name", [n for n in scenarios.CASES if n.startswith("directions")])
def test_directions_mode_is_bit_identical_to_one_process(two_rank_results, name):
    """Same seed and total K: the same direction ids, t_k, accumulation order and update lines."""
    ranks = two_rank_results[name]
    reference = scenarios.reference(name)
    assert np.all(np.isfinite(reference.losses)) and reference.losses[-1] < reference.losses[0]
    for saved in ranks:
        np.testing.assert_array_equal(saved["w"], reference.params[0])
        assert saved["b"] == reference.params[1]
        np.testing.assert_array_equal(saved["losses"], reference.losses)
    steps = scenarios.CASES[name][2]["steps"]                            # every=10 called back
    assert ranks[0]["history"].tolist() == [[s, s] for s in range(10, steps + 1, 10)]
    K = scenarios.CASES[name][2]["directions"]
    assert ranks[0]["sent"] == 8 * (3 + 2 * len(range(0, K, 2)))        # O(K), not O(parameters)


@pytest.mark.parametrize("name", [n for n in scenarios.CASES if n.startswith("data")])
def test_data_mode_equals_one_process_on_the_union_of_the_shards(two_rank_results, name):
    """Mean-squared error: the row-weighted mean of the shards' t_k is the whole batch's t_k.

    Equal in exact arithmetic; in floating point the sums are split differently, hence 1e-12.
    """
    ranks = two_rank_results[name]
    np.testing.assert_array_equal(ranks[0]["w"], ranks[1]["w"])           # identical on every rank
    np.testing.assert_array_equal(ranks[0]["losses"], ranks[1]["losses"])
    reference = scenarios.reference(name)
    np.testing.assert_allclose(ranks[0]["w"], reference.params[0], rtol=1e-12, atol=1e-14)
    assert ranks[0]["b"] == pytest.approx(reference.params[1], rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(ranks[0]["losses"], reference.losses, rtol=1e-12)
    assert reference.losses[-1] < 0.1 * reference.losses[0]              # it did train


# ---- the checks fire ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checks_run(tmp_path_factory):
    """One run: rank 1 differs in seed, then version, then initial parameters; then a nudge."""
    out = tmp_path_factory.mktemp("mpi_checks")
    proc, _ = mpirun("checks", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out


def test_mismatched_seed_version_or_parameters_name_the_rank(checks_run):
    proc, out = checks_run
    for what, field in [("seed", "seed: rank(s) 1 differ"), ("version", "fwdad version: rank(s) 1 differ"),
                        ("initial", "initial parameters (hash): rank(s) 1 differ"),
                        ("data", "contents of data= (hash): rank(s) 1 differ"),
                        ("args", "contents of args= (hash): rank(s) 1 differ")]:
        seen = lines_of(out, what)
        assert sorted(seen) == [0, 1], (what, proc.stdout, proc.stderr)    # raised on every rank
        for message in seen.values():
            assert message.startswith("DistributedError") and field in message, message
    assert "(rank 0: 3, rank 1: 4)" in lines_of(out, "seed")[0]


def test_a_nonfinite_loss_stops_every_rank_at_the_same_step(checks_run):
    proc, out = checks_run
    seen = lines_of(out, "nonfinite")
    assert sorted(seen) == [0, 1] and seen[0] == seen[1], proc.stdout + proc.stderr
    assert seen[0].startswith("NonFiniteLossError: fgd: the loss at step"), seen[0]
    step, done, losses = (int(v) for v in (out / "nonfinite.rank0.txt").read_text().split())
    assert done == losses == step + 1 and (out / "nonfinite.rank1.txt").read_text() == f"{step} {done} {losses}"


def test_a_cuda_or_parallel_function_is_refused_on_every_rank(checks_run):
    """Under mpiexec too: every rank raises the same OptionError (was: the CPU loop ran silently)."""
    proc, out = checks_run
    for target in ("parallel", "cuda"):
        seen = lines_of(out, f"target_{target}")
        assert sorted(seen) == [0, 1] and seen[0] == seen[1], proc.stdout + proc.stderr
        assert seen[0].startswith("OptionError") and f"target={target!r}" in seen[0], seen[0]


def test_perturbed_parameters_are_caught_by_the_hash_check(checks_run):
    proc, out = checks_run
    seen = lines_of(out, "perturb")
    assert sorted(seen) == [0, 1], proc.stdout + proc.stderr
    for message in seen.values():      # perturbed at step 7, hashes compared every 10 steps
        assert "no longer identical on every rank at step 10: rank(s) 1 differ" in message, message


def test_a_rank_that_stops_answering_gives_a_timeout_error_not_a_hang(tmp_path):
    proc, seconds = mpirun("stall", tmp_path)       # rank 1 sleeps 60 s; timeout=2
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "CollectiveTimeout" in output and "allgather of step 3's direction scalars" in output, output
    assert "Rank(s) 1 did not answer a liveness check" in output, output
    assert seconds < 50, seconds


def test_an_exception_on_one_rank_aborts_the_job(tmp_path):
    proc, seconds = mpirun("crash", tmp_path)       # without the abort hook: a 120 s timeout
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "test hook: rank 1 fails at step 3" in output and "calling MPI Abort" in output, output
    assert seconds < 60, seconds


# ---- without MPI -------------------------------------------------------------------------------------
class OneRank:
    """Enough of a communicator for the single-rank fallback."""

    def Get_size(self):
        return 1

    def Iallgather(self, *args):
        raise AssertionError("a single rank must not communicate")


@pytest.mark.parametrize("comm", [None, OneRank()])
def test_no_comm_or_one_rank_falls_back_to_local_fgd(comm):
    fn, params, settings = scenarios.CASES["directions_sgd"]
    result = distributed.distributed_fgd(fn, params, comm=comm, progress=False, **settings)
    reference = scenarios.reference("directions_sgd")
    np.testing.assert_array_equal(result.params[0], reference.params[0])
    assert result.communication is None


class TwoRanks(OneRank):
    """A communicator of two ranks that must refuse before any message (Dup, Iallgather)."""

    def Get_size(self):
        return 2

    def Get_rank(self):
        return 0

    def Dup(self):
        raise AssertionError("a refused target must not communicate")


@pytest.mark.parametrize("target", ["parallel", "cuda"])
def test_a_target_the_mpi_loop_cannot_run_is_refused(target):
    """Each rank runs the compiled CPU loop: a parallel or CUDA function is refused before any
    message, naming the target (was: it silently ran on one CPU core of every rank)."""
    fn = fwdad.forward_grad(scenarios.quadratic, target=target)
    with pytest.raises(fwdad.OptionError, match=rf"(?s)comm= over 2 ranks.*target='{target}'.*What to do: "
                                                 r"decorate quadratic with target='cpu'"):
        distributed.distributed_fgd(fn, (np.zeros(3), 0.5), comm=TwoRanks(), lr=0.01, steps=2,
                                    abort_on_error=False, progress=False)


def test_the_target_is_honoured_when_one_rank_falls_back():
    fn = fwdad.forward_grad(scenarios.quadratic, target="parallel")
    result = distributed.distributed_fgd(fn, (np.zeros(3), 0.5), comm=OneRank(), lr=0.01, steps=5,
                                         directions=2, progress=False)
    reference = fwdad.fgd(fn, (np.zeros(3), 0.5), lr=0.01, steps=5, directions=2, progress=False)
    np.testing.assert_array_equal(result.params[0], reference.params[0])


def test_world_without_mpi4py_falls_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)             # import mpi4py -> ImportError
    assert distributed.resolve_comm("world") is None
    result = fwdad.fgd(scenarios.quadratic, (np.zeros(3), 0.5), lr=0.01, steps=5, comm="world",
                       progress=False)
    reference = fwdad.fgd(scenarios.quadratic, (np.zeros(3), 0.5), lr=0.01, steps=5, progress=False)
    np.testing.assert_array_equal(result.params[0], reference.params[0])


def test_bad_mode_and_comm_are_clear_errors():
    with pytest.raises(FwdadError, match="unknown mode 'shards'"):
        distributed.distributed_fgd(scenarios.quadratic, np.zeros(2), lr=0.1, steps=1, mode="shards")
    with pytest.raises(FwdadError, match="mpi4py communicator"):
        distributed.distributed_fgd(scenarios.quadratic, np.zeros(2), lr=0.1, steps=1, comm=object())


def test_mismatches_name_the_minority_ranks():
    table = np.array([(3,), (3,), (4,)], dtype=[("seed", "<u8")])
    (label, suspects, values, reference), = distributed.mismatches(table, [("seed", None, "seed")])
    assert (label, suspects, values, reference) == ("seed", [2], ["3", "3", "4"], "3")
    tie = np.array([(5,), (6,)], dtype=[("seed", "<u8")])          # a tie: rank 0 is the reference
    assert distributed.mismatches(tie, [("seed", None, "seed")])[0][1] == [1]


def test_parameter_hash_sees_one_ulp():
    a, b = np.linspace(0, 1, 7), np.ones(3, np.float32)             # odd float32 byte counts too
    h = distributed.parameter_hash([a, b])
    assert h == distributed.parameter_hash([a.copy(), b.copy()])
    nudged = a.copy()
    nudged[3] = np.nextafter(nudged[3], 2.0)
    assert distributed.parameter_hash([nudged, b]) != h
    assert distributed.parameter_hash([b, a]) != h


def test_assemble_checks_ids_and_averages_in_rank_order():
    t, K = 5, 3                      # 2 ranks; directions mode: m = 2 slots per rank
    recv = np.array([[t, 1.5, 0, t * K + 0, t * K + 2, 10.0, 30.0],
                     [t, 1.5, 0, t * K + 1, -1, 20.0, 0.0]])
    ts = np.zeros(K)
    assert distributed.assemble(recv, ts, np.zeros(2), False, t, K) == (-1, 1.5)
    np.testing.assert_array_equal(ts, [10.0, 20.0, 30.0])
    recv[1, 3] = (t - 1) * K + 1     # rank 1 sends last step's direction
    assert distributed.assemble(recv, ts, np.zeros(2), False, t, K)[0] == 1
    data = np.array([[t, 1.0, 0, t * K, t * K + 1, t * K + 2, 1.0, 2.0, 3.0],
                     [t, 3.0, 0, t * K, t * K + 1, t * K + 2, 3.0, 4.0, 5.0]])
    assert distributed.assemble(data, ts, np.array([0.25, 0.75]), True, t, K) == (-1, 2.5)
    np.testing.assert_array_equal(ts, [2.5, 3.5, 4.5])


def test_bytes_per_step_do_not_grow_with_the_parameters():
    assert distributed.bytes_per_step("directions", 8, 2) == 2 * (3 + 2 * 4) * 8
    assert distributed.bytes_per_step("data", 8, 2) == 2 * (3 + 2 * 8) * 8
