"""fgd in this process: the options validated once, then the run handed to the function's target."""
from .options import FGDOptions, check_arity, checked_inputs


def fgd_in_process(forward_of, fn, params, *, data, gradient, args, callback, **given):
    """fwdad.fgd without comm=: validate every option (before fn is compiled), then run the
    loop of fn's target; `forward_of` makes the ForwardFunction of fn (fwdad.api.as_forward)."""
    options = FGDOptions.validated(**given)
    args, data = checked_inputs("fgd", params, args, data, gradient, callback)
    forward = forward_of(fn)
    n_params = len(params) if isinstance(params, (tuple, list)) else 1
    check_arity(forward, n_params, len(args), len(data))
    return forward.backend.fgd(forward, params, options, data, gradient, args, callback)
