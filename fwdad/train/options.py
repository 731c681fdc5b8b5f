"""fgd's options, validated once (FGDOptions.validated), and the checks of its other inputs:
every path (CPU, parallel, CUDA, MPI) refuses the same bad values with the same message."""
import sys
from dataclasses import dataclass

import numba
import numpy as np

from .. import options as check
from ..drivers import gradients
from .. import random as fwdrandom
from ..arguments import refuse_foreign_byte_order
from ..errors import FwdadError

OPTIMIZERS = ("sgd", "momentum", "adam")
GRADIENTS = ("forward", "exact", "activity")
COMBINE = ("mean", "orthogonal")
ON_NONFINITE = ("raise", "warn", "continue")


@dataclass(frozen=True)
class FGDOptions:
    """fgd's options, validated once (`FGDOptions.validated`) and shared by the CPU, parallel,
    CUDA and MPI paths, so that every path refuses the same bad values with the same message."""
    lr: float
    steps: int
    seed: int = 0
    optimizer: str = "sgd"
    momentum: float = 0.9
    decay: float = 0.0
    directions: int = 1
    clip: float = None
    batch_size: int = None
    shuffle: bool = True
    every: int = None
    distribution: str = "normal"
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    progress: bool = None
    trajectory: bool = False
    on_nonfinite: str = "raise"
    combine: str = "mean"

    @classmethod
    def validated(cls, who="fgd", **given):
        """The options with every value checked (and converted: NumPy integers to int, ...)."""
        o = cls(**given)
        betas = check.sequence(who, "betas", o.betas, "two numbers", "pass betas=(0.9, 0.999).")
        if len(betas) != 2:
            check.refuse(who, "betas", o.betas, "a pair (beta1, beta2)", "pass betas=(0.9, 0.999).")
        return cls(
            lr=check.real(who, "lr", o.lr, positive=True),
            steps=check.integer(who, "steps", o.steps, 0),
            seed=check.seed(who, o.seed),
            optimizer=check.choice(who, "optimizer", o.optimizer, OPTIMIZERS),
            momentum=check.real(who, "momentum", o.momentum, minimum=0.0, below=1.0),
            decay=check.real(who, "decay", o.decay, minimum=0.0),
            directions=check.integer(who, "directions", o.directions, 1),
            clip=check.optional_real(who, "clip", o.clip, positive=True),
            batch_size=check.optional_integer(who, "batch_size", o.batch_size, 1),
            shuffle=check.flag(who, "shuffle", o.shuffle),
            every=check.optional_integer(who, "every", o.every, 1),
            distribution=check.choice(who, "distribution", o.distribution, tuple(fwdrandom.DISTRIBUTIONS)),
            betas=tuple(check.real(who, f"betas[{i}]", b, minimum=0.0, below=1.0) for i, b in enumerate(betas)),
            eps=check.real(who, "eps", o.eps, positive=True),
            progress=check.optional_flag(who, "progress", o.progress),
            trajectory=check.flag(who, "trajectory", o.trajectory),
            on_nonfinite=check.choice(who, "on_nonfinite", o.on_nonfinite, ON_NONFINITE),
            combine=check.choice(who, "combine", o.combine, COMBINE))


def checked_inputs(who, params, args, data, gradient, callback):
    """(args, data) as tuples, with params, gradient and callback checked (see FGDOptions)."""
    if isinstance(params, (tuple, list)) and not params:
        check.refuse(who, "params", params, "a float, a float array or a tuple of them",
                     "pass the initial values of the parameters to optimize.")
    args = check.sequence(who, "args", args, "constant arguments", "pass args=(a, b) (or args=() ).")
    data = () if data is None else check.sequence(
        who, "data", data, "data arrays (rows along the first axis)",
        "pass data=(X,) for one array, data=(X, Y) for two.")
    for i, array in enumerate(data):
        if np.ndim(array) < 1:
            check.refuse(who, f"data[{i}]", array, "an array with rows along its first axis",
                         "pass arrays (constants go in args=).")
    if not (gradient in GRADIENTS or callable(gradient)):
        check.refuse(who, "gradient", gradient, "'forward', 'exact', 'activity' or a compiled function",
                     "pass one of those.")
    check.optional_callable(who, "callback", callback)
    return args, data


def check_arity(forward, n_params, n_args, n_data):
    """Refuse a call of fn with more or fewer arguments than it takes (params, args, data)."""
    signature = forward.signature.parameters.values()
    required = sum(1 for p in signature if p.default is p.empty)
    given = n_params + n_args + n_data
    if not required <= given <= len(forward.parameters):
        takes = f"{required}" if required == len(forward.parameters) else \
            f"{required} to {len(forward.parameters)}"
        raise check.OptionError(
            f"fgd: {forward.__name__}({', '.join(forward.parameters)}) takes {takes} arguments, but "
            f"fgd would call it with {given}: {n_params} parameter(s), {n_args} in args, "
            f"{n_data} data array(s).\nWhat to do: pass fn's arguments in that order: the "
            "parameters to optimize, then args=(...), then one batch of each data=(...) array.")


def as_parameters(params):
    """(tuple of float arrays/scalars, function rebuilding the user's structure)."""
    single = not isinstance(params, (tuple, list))
    items = (params,) if single else tuple(params)
    copies = []
    for item in items:
        if isinstance(item, np.ndarray):
            if item.dtype.kind != "f":
                raise FwdadError(f"fgd: parameter arrays must be float arrays, got {item.dtype}.\n"
                                 "What to do: pass params.astype(np.float64) (or float32).")
            refuse_foreign_byte_order("fgd", ["params" if single else f"params[{len(copies)}]"], [item])
            copies.append(np.array(item, copy=True, order="C"))
        elif isinstance(item, (float, int, np.floating)) and not isinstance(item, bool):
            copies.append(float(item) if not isinstance(item, np.floating) else item)
        else:
            raise FwdadError(f"fgd: parameters must be float arrays or floats, got {type(item).__name__}.")

    def rebuild(values):
        values = [v if isinstance(v, np.ndarray) else type(items[i])(v) if isinstance(items[i], np.floating)
                  else float(v) for i, v in enumerate(values)]
        if single:
            return values[0]
        return type(params)(values) if isinstance(params, list) else tuple(values)
    return tuple(copies), rebuild


def check_user_gradient(gradient, params, rest):
    """Refuse fgd's gradient=<function> unless it is a Numba dispatcher returning (value, grads)
    with value a float and grads shaped like params (the bare gradient for one parameter): the
    compiled loop copies grads element by element, so a wrong length would read past its end and
    a wrong structure would fail as a raw Numba TypingError. Called once, in Python, on the
    initial parameters (and the first minibatch)."""
    def refuse(wanted, got):
        raise check.OptionError(f"fgd: gradient must be {wanted}, got {got}.\nWhat to do: make "
                                "gradient a @numba.njit function of the same arguments as fn returning "
                                "(loss, gradients), with one gradient per parameter of the "
                                "parameter's shape and dtype (the bare gradient for a single parameter).")
    if not isinstance(gradient, numba.core.dispatcher.Dispatcher):
        refuse("a @numba.njit function", f"{check.shown(gradient)}, which is not compiled "
               "(decorate it with @numba.njit)")
    try:
        out = gradient(*params, *rest)
    except Exception as error:            # typing errors of the user's function, or its raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        refuse("callable on fn's arguments", f"{type(error).__name__} calling it on the initial "
               f"parameters: {first}")
    if not isinstance(out, tuple) or len(out) != 2:
        refuse("a function returning a pair (value, gradients)", f"a result {check.shown(out)}")
    value, grads = out
    if not isinstance(value, (float, np.floating)):
        refuse("a function whose first result is the loss, a float scalar",
               f"{check.shown(value)} first (are value and gradients swapped?)")
    if len(params) == 1:
        grads = (grads,)
    elif not isinstance(grads, (tuple, list)) or len(grads) != len(params):
        refuse(f"a function returning a tuple of {len(params)} gradients, one per parameter",
               check.shown(grads))
    for i, (param, grad) in enumerate(zip(params, grads)):
        if isinstance(param, np.ndarray):
            ok = isinstance(grad, np.ndarray) and grad.shape == param.shape and grad.dtype == param.dtype
            wanted = f"an array of shape {param.shape} and dtype {param.dtype}"
        else:
            ok = isinstance(grad, (float, np.floating)) and np.ndim(grad) == 0
            wanted = "a float scalar"
        if not ok:
            refuse(f"a function whose gradient of parameter {i} is {wanted}", check.shown(grad))


def minibatches(data, batch_size):
    """(data arrays, batch size, one batch buffer per array, permutation) for fgd's data=."""
    data = tuple(np.ascontiguousarray(d) for d in data)
    if not data:
        return data, 0, [], np.zeros(1, np.int64)
    n = len(data[0])
    if any(len(d) != n for d in data):
        raise FwdadError("fgd: every array in data must have the same length (first axis).")
    batch = batch_size or n
    if not 0 < batch <= n:
        raise FwdadError(f"fgd: batch_size must be between 1 and {n}.")
    return data, batch, [np.empty((batch,) + d.shape[1:], d.dtype) for d in data], np.arange(n, dtype=np.int64)


def refuse_unbounded_directions(directions, size):
    """fgd on CUDA holds all K directions of a step on the device (K x parameter count floats):
    refuse a K whose buffers would exceed about gradients.DIRECTION_ENTRIES entries, naming the memory."""
    if directions * max(size, 1) > gradients.DIRECTION_ENTRIES:
        gigabytes = directions * max(size, 1) * 8 / 2 ** 30
        check.refuse("fgd", "directions", directions,
                     f"at most {gradients.DIRECTION_ENTRIES // max(size, 1)} on target='cuda' with {size} "
                     f"parameters (the step's directions would need about {gigabytes:.3g} GiB)",
                     "pass fewer directions, or use target='cpu' or 'parallel', which draw them "
                     "one at a time when they do not fit.")


def progress_bar(total, progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="fgd", unit="step", leave=False)
