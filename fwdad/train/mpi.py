"""fgd over MPI ranks, one rank's side: the generated step functions (evaluate, update), the
channel of non-blocking collectives with deadlines, the start-up and hash checks, and the
Trainer that runs the loop; fwdad.distributed is the entry point (see its docstring)."""
import time

import numba
import numpy as np

from .. import random as fwdrandom
from ..cache import numba_can_cache
from ..errors import FwdadError
from ..drivers.gradients import (actives, compile_driver, namespace, offsets, refuse_written_arguments,
                                 scalar_output_required)
from ..version import __version__
from .chunks import FGDResult, run_in_chunks
from .options import as_parameters, check_arity, progress_bar
from .steps import loop_arguments, shuffle_epoch, update_lines

CACHE = numba_can_cache(__file__)        # running MPI needs no writable directory

MODES = ("directions", "data")
DEFAULT_TIMEOUT = 120.0        # seconds a rank waits in one collective before it reports a hang
COMPILE_TIMEOUT = 300.0        # the first synchronization also waits for the slowest compiler
SPIN_SECONDS = 0.02            # busy-poll this long, then poll every POLL_SLEEP seconds
POLL_SLEEP = 0.0005
PING, PONG = 7301, 7302        # tags of the liveness check run after a timeout
HEADER = 3                     # message: [step, loss, parameter hash, ids (m), scalars (m)]
UPDATE_FUNCTIONS = {}          # update source -> compiled update (it depends on no user function)


class DistributedError(FwdadError):
    """Ranks disagree, diverged, or stopped answering; `.ranks` names the suspects."""

    def __init__(self, message, ranks=()):
        super().__init__(message)
        self.ranks = tuple(ranks)


class CollectiveTimeout(DistributedError):
    """A collective did not complete within the timeout: a rank died, hung or left early."""


# ---- hashing -------------------------------------------------------------------------------------


@numba.njit(error_model="numpy", cache=CACHE)
def hash_words(words, h):
    """Fold 64-bit words into the running hash h (splitmix64 finalizer per word)."""
    for i in range(words.size):
        h = fwdrandom.mix64(h ^ (words[i] + fwdrandom.GOLDEN))
    return h


def parameter_hash(arrays):
    """A 64-bit hash of the parameters' bytes (bit-identical parameters, same hash)."""
    h = np.uint64(0x6677646164)
    for a in arrays:
        raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        if raw.size % 8:
            raw = np.concatenate([raw, np.zeros(8 - raw.size % 8, np.uint8)])
        h = np.uint64(hash_words(raw.view(np.uint64), h ^ np.uint64(a.size)))   # Numba returns an int:
    return int(h)                                     # NumPy 1.x cannot xor one above 2**63 with a uint64


def content_arrays(values):
    """Arrays whose bytes stand for `values` (arrays, scalars, and for anything else, such as a
    tuple of arrays, its items recursively) for parameter_hash."""
    found = []
    for value in values:
        if isinstance(value, (tuple, list)):
            found += content_arrays(value)
            continue
        array = np.asarray(value)
        found.append(array if array.dtype != object else np.frombuffer(repr(value).encode(), np.uint8))
    return found


# ---- generated, compiled step functions ------------------------------------------------------------


def evaluate_source(active, n_params, n_args, n_data):
    """Source of `evaluate`: draw this rank's (shard of the) minibatch, run its JVPs, fill msg."""
    params, constants, full_data, batches = loop_arguments(n_params, n_args, n_data)
    directions = [f"v{i}" for i in range(n_params)]
    head = ", ".join(params + constants + full_data + batches + directions + [
        "perm", "ks", "msg", "t", "seed", "K", "distribution", "table", "batch", "shuffle",
        "first", "stride", "rows"])
    lines = offsets(active)
    if n_data:
        lines += ["if rows > 0:", "    per_epoch = perm.size // batch", "    b = t % per_epoch",
                  "    if b == 0 and shuffle:", "        shuffle_epoch(perm, seed, t // per_epoch)",
                  "    for i in range(rows):", "        j = perm[b * batch + first + i * stride]"]
        lines += [f"        {buf}[i] = {full}[j]" for buf, full in zip(batches, full_data)]
    call = [p if not a.scalar else f"{p}[0]" for p, a in zip(params, active)] + constants + batches
    tangents = [v if not a.scalar else f"{v}[0]" for v, a in zip(directions, active)]
    lines += [f"m = (msg.size - {HEADER}) // 2", "value = np.nan", "for slot in range(ks.size):",
              "    k = ks[slot]"]
    lines += [f"    fill({v}, table, seed, t * K + k, o{i}, distribution)" for i, v in enumerate(directions)]
    lines += [f"    value, jv = jvp({', '.join(call + tangents)})",
              f"    msg[{HEADER} + slot] = t * K + k", f"    msg[{HEADER} + m + slot] = jv",
              "msg[0] = t", "msg[1] = value", "return value"]
    return render("evaluate", head, lines)


def update_source(active, n_params, optimizer, clip, single):
    """Source of `update`: check and assemble the gathered scalars, then apply fgd's update.

    The forward gradient, clipping and optimizer lines are those of fwdad.optim's loop, with
    t_k read from the gathered messages instead of computed locally; single (K = 1, no clip)
    fuses g = t_0 v_0 into the update as fgd does, so that the rounding is the same.
    """
    params = loop_arguments(n_params, 0, 0)[0]
    head = ", ".join(params + [f"m{i}" for i in range(n_params)] + [f"s{i}" for i in range(n_params)]
                     + [f"g{i}" for i in range(n_params)] + [f"v{i}" for i in range(n_params)] + [
        "recv", "ts", "weights", "averaged", "t", "seed", "K", "distribution", "table", "lr",
        "decay", "mu", "beta1", "beta2", "eps", "clip"])
    lines = offsets(active)
    for i, p in enumerate(params):
        lines.append(f"{p}f, g{i}f, m{i}f, s{i}f, v{i}f = {p}.reshape({p}.size), g{i}.reshape(g{i}.size), "
                     f"m{i}.reshape(m{i}.size), s{i}.reshape(s{i}.size), v{i}.reshape(v{i}.size)")
    lines += ["status, loss = assemble(recv, ts, weights, averaged, t, K)", "if status != -1:",
              "    return status, loss", "for k in range(K):", "    tk = ts[k]"]
    if single:
        lines[-2:] = ["tk = ts[0] if K > 0 else 0.0"] + [
            f"fill(v{i}, table, seed, t * K, o{i}, distribution)" for i in range(n_params)]
    for i in range(0 if single else n_params):
        lines += [f"    fill(v{i}, table, seed, t * K + k, o{i}, distribution)",
                  f"    for e in range(g{i}f.size):",
                  f"        g{i}f[e] = (g{i}f[e] if k > 0 else g{i}f.dtype.type(0)) "
                  f"+ g{i}f.dtype.type(tk) * v{i}f[e]"]
    if not single:                      # loops, not `g /= K`: the same arithmetic, faster to compile
        lines.append("if K > 1:")
        for i in range(n_params):
            lines += [f"    for e in range(g{i}f.size):", f"        g{i}f[e] = g{i}f[e] / K"]
    lines += update_lines(n_params, optimizer, clip, lambda i: f"(tk * v{i}f[e])" if single else f"g{i}f[e]")
    lines.append("return -1, loss")
    return render("update", head, lines)


def render(name, head, lines):
    return "def {}({}):\n{}\n".format(name, head, "\n".join("    " + line for line in lines))


@numba.njit(error_model="numpy", cache=CACHE)
def assemble(recv, ts, weights, averaged, t, K):
    """Fill ts[k] from the gathered messages; (-1, loss) or (the first bad rank, nan).

    averaged=False (directions mode): each t_k comes from the one rank that sent id t*K + k.
    averaged=True (data mode): t_k = sum_r weights[r] * (rank r's t_k), in rank order.
    A rank whose step or ids are not this step's is reported (status = its rank); a direction
    nobody sent gives status -2.
    """
    size = recv.shape[0]
    m = (recv.shape[1] - 3) // 2
    for r in range(size):
        if recv[r, 0] != t:
            return r, np.nan
    if averaged:
        loss = 0.0
        for k in range(K):
            ts[k] = 0.0
        for r in range(size):
            loss += weights[r] * recv[r, 1]
            for k in range(K):
                if recv[r, 3 + k] != t * K + k:
                    return r, np.nan
                ts[k] += weights[r] * recv[r, 3 + m + k]
        return -1, loss
    seen = np.zeros(K, np.bool_)
    for r in range(size):
        for j in range(m):
            ident = recv[r, 3 + j]
            if ident < 0:
                continue
            k = np.int64(ident) - t * K
            if k < 0 or k >= K or seen[k]:
                return r, np.nan
            seen[k] = True
            ts[k] = recv[r, 3 + m + j]
    for k in range(K):
        if not seen[k]:
            return -2, np.nan
    return -1, recv[0, 1]


# ---- communication with deadlines --------------------------------------------------------------------


class Channel:
    """Non-blocking collectives on a private duplicate of the communicator, polled with a deadline."""

    def __init__(self, comm, timeout):
        from mpi4py import MPI
        self.MPI, self.timeout = MPI, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.replies = []
        self.comm = comm                     # the liveness check of a timed-out Idup pings on it
        self.comm = self.wait_dup(comm)      # fwdad's own messages never meet the program's

    def wait_dup(self, comm):
        if hasattr(comm, "Idup"):
            dup, request = comm.Idup()
            self.wait(request, "MPI_Comm_idup at the start of fgd (some rank did not call fgd)")
            return dup
        return comm.Dup()

    def free(self):
        try:
            self.comm.Free()
        except Exception:           # a communicator with pending requests after an error
            pass

    def allgather(self, send, recv, what, timeout=None):
        """recv[r] = rank r's `send` (byte copies; any dtype), or CollectiveTimeout."""
        request = self.comm.Iallgather([send.view(np.uint8), self.MPI.BYTE],
                                       [recv.view(np.uint8), self.MPI.BYTE])
        self.wait(request, what, timeout)

    def barrier(self, what, timeout=None):
        self.wait(self.comm.Ibarrier(), what, timeout)

    def wait(self, request, what, timeout=None):
        """Spin on request.Test(), then poll with short sleeps (answering liveness pings)."""
        if request.Test():
            return
        start = time.monotonic()
        deadline = start + (self.timeout if timeout is None else timeout)
        while True:
            for _ in range(64):
                if request.Test():
                    return
            now = time.monotonic()
            if now > deadline:
                self.timed_out(what, now - start)
            if now - start > SPIN_SECONDS:
                self.answer_pings()
                time.sleep(POLL_SLEEP)

    def answer_pings(self, alive=None):
        """Reply to other ranks' liveness pings; record who pinged or answered in `alive`."""
        MPI, status = self.MPI, self.MPI.Status()
        buffer = np.zeros(1, np.int64)
        while self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            tag, source = status.Get_tag(), status.Get_source()
            if tag not in (PING, PONG):
                return
            self.comm.Recv([buffer, MPI.INT64_T], source=source, tag=tag)
            if alive is not None:
                alive.add(source)
            if tag == PING:
                self.replies.append(self.comm.Isend([np.array([self.rank], np.int64), MPI.INT64_T],
                                                    dest=source, tag=PONG))

    def timed_out(self, what, waited):
        """Find out which ranks still answer, then raise CollectiveTimeout naming the others."""
        MPI = self.MPI
        grace = min(10.0, max(1.0, 0.1 * self.timeout))
        ping = np.array([self.rank], np.int64)
        for r in range(self.size):
            if r != self.rank:
                self.replies.append(self.comm.Isend([ping, MPI.INT64_T], dest=r, tag=PING))
        alive, end = {self.rank}, time.monotonic() + grace
        while time.monotonic() < end and len(alive) < self.size:
            self.answer_pings(alive)
            time.sleep(0.002)
        silent = sorted(set(range(self.size)) - alive)
        message = (f"fwdad.distributed: rank {self.rank} of {self.size} waited {waited:.1f} s "
                   f"(timeout={self.timeout:g}) in {what}, and not every rank joined.\n")
        if silent:
            message += (f"Rank(s) {join(silent)} did not answer a liveness check within {grace:g} s: "
                        "they may have died, hung, or left the training loop early (an exception "
                        "caught on that rank, a different number of steps).")
            if len(alive) > 1:
                message += f" Rank(s) {join(sorted(alive))} answered (alive, waiting)."
        else:
            message += ("Every rank answered a liveness check, so one of them is running far "
                        "slower than the others or is stuck in another collective.")
        message += ("\nWhat to do: read the output of the silent rank(s); if a step legitimately "
                    "takes longer, pass a larger timeout= to fgd.")
        raise CollectiveTimeout(message, silent)


def join(ranks):
    return ", ".join(str(r) for r in ranks)


# ---- the consistency checks -------------------------------------------------------------------------
CHECKED = [          # (field, numpy type, description for the error message)
    ("version", "S24", "fwdad version"), ("function", "S48", "loss function"),
    ("seed", "<u8", "seed"), ("directions", "<i8", "number of directions K"),
    ("steps", "<i8", "number of steps"), ("mode", "S12", "mode"), ("optimizer", "S12", "optimizer"),
    ("distribution", "S12", "distribution"), ("n_params", "<i8", "parameter count"),
    ("dtypes", "S48", "parameter dtypes"), ("lr", "<f8", "lr"), ("momentum", "<f8", "momentum"),
    ("decay", "<f8", "decay"), ("clip", "<f8", "clip"), ("beta1", "<f8", "betas[0]"),
    ("beta2", "<f8", "betas[1]"), ("eps", "<f8", "eps"), ("batch", "<i8", "batch_size"),
    ("rows", "<i8", "number of data rows"), ("shuffle", "<i8", "shuffle"),
    ("check_every", "<i8", "check_every"), ("params_hash", "<u8", "initial parameters (hash)"),
    ("data_hash", "<u8", "contents of data= (hash)"), ("args_hash", "<u8", "contents of args= (hash)"),
]
HEADER_DTYPE = np.dtype([(name, kind) for name, kind, _ in CHECKED])


def mismatches(table, describe):
    """[(description, suspect ranks, per-rank values, reference value)] for each field whose
    ranks disagree (compared bit for bit, so NaN equals NaN).

    The reference value of a field is the most common one (ties: rank 0's); the suspects are
    the ranks that hold another value.
    """
    found = []
    for name, _, label in describe:
        keys = [np.asarray(row[name]).tobytes() for row in table]
        if all(key == keys[0] for key in keys):
            continue
        counts = {key: keys.count(key) for key in keys}
        best = max(counts.values())
        reference = next(key for key in keys if counts[key] == best)    # ties: the lowest rank's
        suspects = [r for r, key in enumerate(keys) if key != reference]
        values = [show(row[name]) for row in table]
        found.append((label, suspects, values, values[keys.index(reference)]))
    return found


def show(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.floating):
        return repr(float(value))
    return str(value)


# ---- the trainer ---------------------------------------------------------------------------------


class Trainer:
    """One rank's state: parameters, its data shard, compiled step functions and the channel."""

    def __init__(self, forward, params, channel, mode, options, data, args, check_every):
        o = self.options = options
        self.forward, self.mode, self.steps, self.seed = forward, mode, o.steps, np.uint64(o.seed)
        self.optimizer, self.K, self.distribution = o.optimizer, o.directions, o.distribution
        self.settings = dict(lr=o.lr, momentum=o.momentum, decay=o.decay, clip=o.clip or 0.0,
                             beta1=o.betas[0], beta2=o.betas[1], eps=o.eps)
        self.check_every, self.shuffle = check_every, o.shuffle
        self.channel = channel
        self.rank, self.size = self.channel.rank, self.channel.size
        self.values, self.rebuild = as_parameters(params)
        self.arrays = [v if isinstance(v, np.ndarray) else np.array([v], dtype=np.float64
                       if isinstance(v, float) else type(v)) for v in self.values]
        self.args = args
        check_arity(self.forward, len(self.values), len(args), len(data))
        self.prepare_data(data, o.batch_size)
        self.check_header()
        self.prepare_directions()
        self.compile()

    # -- setup --
    def prepare_data(self, data, batch_size):
        """Whole data arrays, this rank's rows of each minibatch (first, stride, rows) and buffers."""
        self.data = tuple(np.ascontiguousarray(d) for d in data)
        if not self.data:
            self.batch, self.first, self.stride, self.rows = 0, 0, 1, 0
            self.buffers, self.perm = [], np.zeros(1, np.int64)
            self.n_rows = 0
            return
        n = self.n_rows = len(self.data[0])
        if any(len(d) != n for d in self.data):
            raise FwdadError("fgd: every array in data must have the same length (first axis).")
        self.batch = batch_size or n
        if not 0 < self.batch <= n:
            raise FwdadError(f"fgd: batch_size must be between 1 and {n}.")
        if self.mode == "data":
            if self.batch < self.size:
                raise FwdadError(f"fgd: mode='data' splits each minibatch over {self.size} ranks, "
                                 f"so batch_size must be at least {self.size} (got {self.batch}).")
            self.first, self.stride = self.rank, self.size
            self.rows = len(range(self.rank, self.batch, self.size))
        else:
            self.first, self.stride, self.rows = 0, 1, self.batch
        self.buffers = [np.empty((self.rows,) + d.shape[1:], d.dtype) for d in self.data]
        self.perm = np.arange(n, dtype=np.int64)

    def header(self):
        row = np.zeros(1, HEADER_DTYPE)
        name = getattr(self.forward, "__qualname__", "") or getattr(self.forward, "__name__", "")
        module = getattr(self.forward.py_func, "__module__", "") or ""
        dtypes = ",".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        values = dict(version=__version__, function=f"{module}.{name}"[-48:], seed=self.seed,
                      directions=self.K, steps=self.steps, mode=self.mode, optimizer=self.optimizer,
                      distribution=self.distribution, n_params=sum(a.size for a in self.arrays),
                      dtypes=dtypes[:48], batch=self.batch, rows=self.n_rows, shuffle=int(self.shuffle),
                      check_every=self.check_every, params_hash=parameter_hash(self.arrays),
                      **self.contents_hashes(), **self.settings)
        for name, value in values.items():
            row[name] = value.encode() if isinstance(value, str) else value
        return row

    def contents_hashes(self):
        """Hashes of data= and args= in directions mode, where every rank must hold the same
        values (a rank with other data would mix other gradients in); 0 in data mode, where
        ranks may hold their own data in args."""
        if self.mode != "directions":
            return dict(data_hash=0, args_hash=0)
        return dict(data_hash=parameter_hash(content_arrays(self.data)) if self.data else 0,
                    args_hash=parameter_hash(content_arrays(self.args)) if self.args else 0)

    def check_header(self):
        """Allgather every rank's settings; raise on every rank if any field differs."""
        mine = self.header()
        table = np.zeros(self.size, HEADER_DTYPE)
        self.channel.allgather(mine, table, "the start-up check of fgd's settings (allgather)")
        found = mismatches(table, CHECKED)
        if not found:
            return
        lines, suspects = [], set()
        for label, ranks, values, reference in found:
            suspects.update(ranks)
            per_rank = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            lines.append(f"  {label}: rank(s) {join(ranks)} differ from {reference!s} ({per_rank})")
        raise DistributedError(
            f"fwdad.distributed: the {self.size} ranks called fgd with different settings "
            f"(seen on rank {self.rank}):\n" + "\n".join(lines) +
            "\nWhat to do: every rank must call fgd with the same fwdad version, function, seed, "
            "settings and initial parameters (initialize them from a shared seed or "
            "comm.Bcast them from rank 0).", sorted(suspects))

    def prepare_directions(self):
        """Which directions this rank evaluates, message buffers and shard weights."""
        K, size = self.K, self.size
        if self.mode == "directions":
            self.ks = np.arange(self.rank, K, size, dtype=np.int64)
            self.m = len(range(0, K, size))            # the most any rank holds (rank 0's)
            self.weights = np.zeros(size)
        else:
            self.ks = np.arange(K, dtype=np.int64)
            self.m = K
            if self.data:
                rows = np.array([len(range(r, self.batch, size)) for r in range(size)], np.float64)
                self.weights = rows / self.batch
            else:                                      # each rank's own data in args: equal weights
                self.weights = np.full(size, 1.0 / size)
        self.msg = np.full(HEADER + 2 * self.m, -1.0)
        self.recv = np.empty((size, self.msg.size))
        self.ts = np.zeros(K)

    def compile(self):
        forward = self.forward
        sample = tuple(self.values) + self.args + tuple(self.buffers)
        active = list(range(len(self.values)))
        spec = forward.specialization(sample, active)
        scalar_output_required(spec, "fgd")
        refuse_written_arguments(spec, "fgd")
        act = actives(spec)[:len(self.values)]
        ns = dict(namespace(spec), shuffle_epoch=shuffle_epoch, assemble=assemble)
        sources = (evaluate_source(act, len(self.values), len(self.args), len(self.data)),
                   update_source(act, len(self.values), self.optimizer, self.settings["clip"],
                                 self.K == 1 and not self.settings["clip"]))
        self.evaluate_fn = spec.driver(("distributed evaluate", sources[0]),  # once per configuration
                                       lambda: compile_driver(sources[0], "evaluate", ns))
        if sources[1] not in UPDATE_FUNCTIONS:        # calls no user code: shared by every function
            UPDATE_FUNCTIONS[sources[1]] = compile_driver(sources[1], "update", ns)
        self.update_fn = UPDATE_FUNCTIONS[sources[1]]
        self.source = "\n".join(sources)
        self.v = [np.empty_like(a) for a in self.arrays]
        self.g = [np.zeros_like(a) for a in self.arrays]
        self.state = [np.zeros_like(a) for a in self.arrays] + [np.zeros_like(a) for a in self.arrays]

    # -- the step --
    def evaluate(self, t, ks, rows):
        return self.evaluate_fn(*self.arrays, *self.args, *self.data, *self.buffers, *self.v,
                                self.perm, ks, self.msg, t, self.seed, self.K,
                                fwdrandom.DISTRIBUTIONS[self.distribution], fwdrandom.NORMAL_TABLE,
                                self.batch, self.shuffle, self.first, self.stride, rows)

    def update(self, arrays, state, t, K):
        s = self.settings
        return self.update_fn(*arrays, *state, *self.g, *self.v, self.recv, self.ts, self.weights,
                              self.mode == "data", t, self.seed, K,
                              fwdrandom.DISTRIBUTIONS[self.distribution], fwdrandom.NORMAL_TABLE,
                              s["lr"], s["decay"], s["momentum"], s["beta1"], s["beta2"], s["eps"],
                              s["clip"])

    def warm_up(self):
        """Compile both step functions (on copies, no step taken), then wait for every rank."""
        self.evaluate(0, self.ks[:0], 0)
        self.recv[:] = 0.0
        copies = [a.copy() for a in self.arrays]
        self.update(copies, [s.copy() for s in self.state], 0, 0)
        self.channel.barrier("the synchronization after compiling (Ibarrier)",
                             max(self.channel.timeout, COMPILE_TIMEOUT))

    def step(self, t):
        """One step: this rank's JVPs, one allgather of (id, t_k) pairs, the identical update."""
        self.msg[HEADER:] = -1.0
        self.evaluate(t, self.ks, self.rows)
        checking = self.check_every and t % self.check_every == 0 and t > 0
        self.msg.view(np.uint64)[2] = parameter_hash(self.arrays) if checking else 0
        self.channel.allgather(self.msg, self.recv, f"the allgather of step {t}'s direction scalars")
        if checking:
            self.compare_hashes(self.recv.view(np.uint64)[:, 2], f"at step {t}")
        status, loss = self.update(self.arrays, self.state, t, self.K)
        if status != -1:
            self.desynchronized(t, status)
        return loss

    def compare_hashes(self, hashes, when):
        hashes = [int(h) for h in hashes]
        if all(h == hashes[0] for h in hashes):
            return
        table = np.array([(h,) for h in hashes], dtype=[("hash", "<u8")])
        (_, suspects, _, reference), = mismatches(table, [("hash", None, "hash")])
        per_rank = ", ".join(f"rank {r}: {h:016x}" for r, h in enumerate(hashes))
        raise DistributedError(
            f"fwdad.distributed: the parameters are no longer identical on every rank {when}: "
            f"rank(s) {join(suspects)} differ from the others (parameter hashes {per_rank}; seen on "
            f"rank {self.rank}).\nWhat to do: a rank's parameters were changed outside fgd, or the "
            "ranks run different builds (numpy/numba/BLAS versions, CPU features) that round "
            "differently; run every rank with the same environment.", suspects)

    def desynchronized(self, t, status):
        if status == -2:
            raise DistributedError(f"fwdad.distributed: step {t}: some of the {self.K} directions "
                                   "were not evaluated by any rank (internal error).")
        raise DistributedError(
            f"fwdad.distributed: rank {status} sent the scalars of another step or other directions "
            f"than step {t}'s (seen on rank {self.rank}); the ranks are out of step.\nWhat to do: "
            "make every rank run the same sequence of fgd calls.", [int(status)])

    # -- the loop --
    def train(self, callback):
        o, steps = self.options, self.steps
        losses = np.zeros(steps, np.float64)
        bar = progress_bar(steps, o.progress) if self.rank == 0 else None
        self.warm_up()

        def run(done, n):
            """n steps, or up to the first non-finite loss: every rank holds the same losses,
            so every rank stops at the same step."""
            for t in range(done, done + n):
                losses[t] = self.step(t)
                if o.on_nonfinite == "raise" and not np.isfinite(losses[t]):
                    return t - done + 1
            return n
        record = run_in_chunks(steps, run, self.current, losses, o.every, callback, bar, o.on_nonfinite)
        if record.stop is None:
            self.final_check()
        result = FGDResult(self.current(), losses[:record.done], record.times, record.seconds,
                           record.done, record.history)
        result.communication = self.communication()
        return record.finish(result)

    def final_check(self):
        mine = np.array([parameter_hash(self.arrays)], np.uint64)
        hashes = np.zeros(self.size, np.uint64)
        self.channel.allgather(mine, hashes, "the final parameter check (allgather)")
        self.compare_hashes(hashes, "at the end of training")

    def communication(self):
        """What one step sends: per rank, and as the total every rank receives."""
        return {"mode": self.mode, "ranks": self.size, "rank": self.rank, "directions": self.K,
                "directions_on_this_rank": int(self.ks.size), "floats_per_message": int(self.msg.size),
                "bytes_sent_per_step": int(self.msg.nbytes), "bytes_received_per_step": int(self.recv.nbytes),
                "collectives_per_step": 1}

    def current(self):
        values = [a.copy() if isinstance(v, np.ndarray) else a[0] for a, v in zip(self.arrays, self.values)]
        return self.rebuild(values)


def bytes_per_step(mode, directions, ranks):
    """Bytes each rank receives per step (its own message included) for these settings."""
    m = len(range(0, directions, ranks)) if mode == "directions" else directions
    return ranks * (HEADER + 2 * m) * 8


