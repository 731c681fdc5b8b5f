"""The `fwdad` command: show (generated code), reproduce (the paper), bench (side by side)."""
import argparse
import importlib.util
import inspect
import math
import os
import sys

import numpy as np

SAMPLES = {float: 1.0, int: 3, bool: True, np.ndarray: np.ones(3), "float": 1.0, "int": 3,
           "bool": True, "np.ndarray": np.ones(3), "ndarray": np.ones(3)}


def load_function(spec):
    """Import FILE.py and return its attribute FUNC, from a `FILE.py:FUNC` string."""
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise SystemExit(f"fwdad show: expected FILE.py:FUNCTION, got {spec!r}")
    if not os.path.isfile(path):
        raise SystemExit(f"fwdad show: no such file: {path}")
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)
    module_name = os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    if not hasattr(module, name):
        raise SystemExit(f"fwdad show: {path} has no function {name!r}")
    return getattr(module, name)


def sample_arguments(function, text):
    """Arguments to specialize on: --args if given, else one sample per parameter annotation."""
    if text:
        value = eval(text, {"np": np, "numpy": np, "math": math})
        return value if isinstance(value, tuple) else (value,)
    from .frontend.parse import python_function
    parameters = inspect.signature(python_function(function)).parameters.values()
    return tuple(SAMPLES.get(p.annotation, 1.0) if p.default is inspect.Parameter.empty else p.default
                 for p in parameters)


def show(args):
    import fwdad
    function = load_function(args.target)
    forward = function if isinstance(function, fwdad.ForwardFunction) else fwdad.forward_grad(function)
    arguments = sample_arguments(function, args.args)
    print(forward.source_for(*arguments))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fwdad", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("show", help="print the tangent code fwdad generates for FILE.py:FUNC")
    p.add_argument("target", metavar="FILE.py:FUNC")
    p.add_argument("--args", help="Python expression for sample arguments, e.g. "
                   "'(np.ones(5), 2.0, 10)' (default: from annotations, floats otherwise)")
    p.set_defaults(run=show)
    from .reproduce import register as register_reproduce
    from .bench.suites import register as register_bench
    register_reproduce(commands)
    register_bench(commands)
    for register in _SUBCOMMANDS:
        register(commands)
    args = parser.parse_args(argv)
    from .errors import FwdadError
    try:
        args.run(args)
    except FwdadError as error:
        print(f"fwdad: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


_SUBCOMMANDS = []


def subcommand(register):
    """Add a subcommand to `fwdad` (used by reproduce and bench)."""
    _SUBCOMMANDS.append(register)
    return register


if __name__ == "__main__":
    sys.exit(main())
