"""The `fwdad` command: show (generated code), reproduce (the paper), bench (side by side)."""
import argparse
import ast
import hashlib
import importlib.util
import inspect
import math
import os
import sys

import numpy as np

SAMPLES = {float: 1.0, int: 3, bool: True, np.ndarray: np.ones(3), "float": 1.0, "int": 3,
           "bool": True, "np.ndarray": np.ones(3), "ndarray": np.ones(3)}
ARGS_EXAMPLE = "'(np.ones(5), 2.0, 10)'"

# What `--args` may call or name, by its spelling after `np.` / `numpy.` / `math.`: an explicit
# whitelist read from the syntax tree, never eval (a file's --args must not run code).
ARGS_CALLS = {"np.ones": np.ones, "np.zeros": np.zeros, "np.full": np.full, "np.eye": np.eye,
              "np.arange": np.arange, "np.linspace": np.linspace, "np.array": np.array,
              "np.float64": np.float64, "np.float32": np.float32, "np.int64": np.int64,
              "np.int32": np.int32}
ARGS_NAMES = {"np.float64": np.float64, "np.float32": np.float32, "np.int64": np.int64,
              "np.int32": np.int32, "np.bool_": np.bool_, "np.pi": np.pi, "np.e": np.e,
              "math.pi": math.pi, "math.e": math.e}
ARGS_KEYWORDS = {"dtype"}
ARGS_FORMS = ("numbers, True/False/None, tuples and lists of them, and the calls "
              f"{', '.join(sorted(ARGS_CALLS))} (keyword dtype= only)")


# ---- fwdad show: loading the user's file -------------------------------------------------------

def load_function(spec):
    """The attribute FUNC of FILE.py, from a `FILE.py:FUNC` string (the file run privately)."""
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise SystemExit(f"fwdad show: expected FILE.py:FUNCTION, got {spec!r}")
    if not os.path.isfile(path):
        raise SystemExit(f"fwdad show: no such file: {path}")
    module = run_file_privately(path)
    if not hasattr(module, name):
        raise SystemExit(f"fwdad show: {path} has no function {name!r}")
    return getattr(module, name)


def private_module_name(path):
    """fwdad_show_<hash of the absolute path>: unique, so it never shadows a real module."""
    return "fwdad_show_" + hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]


def run_file_privately(path):
    """Run FILE.py as a module under a private name and return it.

    A file named like a library module (random.py) must not replace that module in
    sys.modules: Numba itself imports `random`. The module is registered only while it runs
    (dataclasses look themselves up there), its directory is appended to sys.path (sibling
    imports work, library modules still win), and both are restored afterwards.
    """
    name = private_module_name(path)
    module_spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    module = importlib.util.module_from_spec(module_spec)
    saved_path = list(sys.path)
    sys.path.append(os.path.dirname(os.path.abspath(path)))
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
        sys.modules.pop(name, None)
    return module


# ---- fwdad show: --args, parsed, never evaluated -----------------------------------------------

def parse_arguments(text):
    """The tuple of example arguments written in `text` (see ARGS_FORMS); anything else is refused."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise SystemExit(f"fwdad show: --args {text!r} is not a Python expression ({error.msg}).\n"
                         f"What to do: write a tuple such as {ARGS_EXAMPLE}") from None
    value = argument_value(tree.body, text)
    return value if isinstance(value, tuple) else (value,)


def argument_value(node, text):
    """The value of one whitelisted syntax node of --args."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool, str, type(None))):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [argument_value(item, text) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = argument_value(node.operand, text)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Attribute) and dotted_name(node) in ARGS_NAMES:
        return ARGS_NAMES[dotted_name(node)]
    if isinstance(node, ast.Call) and dotted_name(node.func) in ARGS_CALLS:
        return argument_call(node, text)
    raise refused(node, text)


def argument_call(node, text):
    """np.ones(5), np.zeros((3, 4), dtype=np.float32), np.float32(1.0), ...: called with parsed values."""
    for keyword in node.keywords:
        if keyword.arg not in ARGS_KEYWORDS:
            raise refused(keyword.value if keyword.arg is None else keyword, text)
    positional = [argument_value(a, text) for a in node.args]
    keywords = {k.arg: argument_value(k.value, text) for k in node.keywords}
    try:
        return ARGS_CALLS[dotted_name(node.func)](*positional, **keywords)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"fwdad show: --args: {ast.get_source_segment(text, node)} failed: {error}") from None


def dotted_name(node):
    """`np.ones` for the nodes of np.ones or numpy.ones, `math.pi` for math.pi; else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        module = {"np": "np", "numpy": "np", "math": "math"}.get(node.value.id)
        return f"{module}.{node.attr}" if module else None
    return None


def refused(node, text):
    segment = ast.get_source_segment(text, node) or type(node).__name__
    return SystemExit(f"fwdad show: --args may not contain {segment!r}: it is read, never run, and "
                      f"accepts only {ARGS_FORMS}.\nWhat to do: write the arguments in those forms, "
                      f"e.g. --args {ARGS_EXAMPLE}")


# ---- fwdad show: what to differentiate, and for which types ------------------------------------

def sample_arguments(function, text):
    """(arguments, names guessed): --args if given, else defaults and annotation samples.

    A parameter with neither a default nor a known annotation gets 1.0; its name is returned
    so that a failure can be explained (the guess, not the user's code, may be what is wrong).
    """
    if text:
        return parse_arguments(text), []
    from .frontend.parse import python_function
    parameters = inspect.signature(python_function(function)).parameters.values()
    values, guessed = [], []
    for p in parameters:
        if p.default is not inspect.Parameter.empty:
            values.append(p.default)
        elif is_known_annotation(p.annotation):
            values.append(SAMPLES[p.annotation])
        else:
            values.append(1.0)
            guessed.append(p.name)
    return tuple(values), guessed


def is_known_annotation(annotation):
    try:
        return annotation in SAMPLES
    except TypeError:                     # an unhashable annotation
        return False


def parse_wrt(text, parameters):
    """--wrt "x,w" or "0,1" as positions; names must be parameters, positions in range."""
    positions = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item.isdigit() and int(item) < len(parameters):
            positions.append(int(item))
        elif item in parameters:
            positions.append(parameters.index(item))
        else:
            raise SystemExit(f"fwdad show: --wrt names {item!r}, which is not a parameter "
                             f"({', '.join(parameters)}) or a position below {len(parameters)}")
    if not positions:
        raise SystemExit("fwdad show: --wrt is empty; give parameter names or positions, e.g. --wrt x,w")
    return tuple(positions)


def forward_function(function, wrt_text):
    """The ForwardFunction to show: the file's own (with its wrt=), or a new one; --wrt overrides."""
    import fwdad
    forward = function if isinstance(function, fwdad.ForwardFunction) else fwdad.forward_grad(function)
    if wrt_text:
        wrt = parse_wrt(wrt_text, forward.parameters)
        forward = fwdad.forward_grad(forward.py_func, target=forward.target, wrt=wrt)
    return forward


def unknown_types_error(forward, spec, arguments, guessed, error):
    """The failure of a guessed specialization, explained: the cure is --args, not the code."""
    from .errors import FwdadError
    tried = ", ".join(f"{name}={value!r}" for name, value in zip(forward.parameters, arguments))
    lines = [line for line in str(error).split("What to do:")[0].splitlines() if line.strip()]
    cause = "\n".join("    " + line for line in lines[:6] + (["..."] if len(lines) > 6 else []))
    return FwdadError(
        f"fwdad show does not know the argument types of {forward.__name__}: "
        f"{', '.join(guessed)} {'has' if len(guessed) == 1 else 'have'} no annotation or default, "
        f"so it tried {tried}, and that failed:\n{cause}\n"
        f"What to do: pass example arguments, e.g. fwdad show {spec} --args {ARGS_EXAMPLE} "
        "(one per parameter), or annotate the parameters (x: np.ndarray, n: int).")


def show(args):
    from .errors import FwdadError
    function = load_function(args.target)
    forward = forward_function(function, args.wrt)
    arguments, guessed = sample_arguments(function, args.args)
    try:
        text = forward.source_for(*arguments, active=forward.active_positions(arguments))
    except FwdadError as error:
        if guessed:
            raise unknown_types_error(forward, args.target, arguments, guessed, error) from None
        raise
    if guessed:
        print(f"fwdad show: guessed 1.0 (float64) for {', '.join(guessed)} (no annotation or default); "
              f"pass --args {ARGS_EXAMPLE} for the real types.", file=sys.stderr)
    print(text)


def register_show(commands):
    p = commands.add_parser("show", help="print the tangent code fwdad generates for FILE.py:FUNC")
    p.add_argument("target", metavar="FILE.py:FUNC")
    p.add_argument("--args", help=f"example arguments, e.g. {ARGS_EXAMPLE}; read, never run: "
                   f"{ARGS_FORMS} (default: parameter defaults, annotations, else 1.0)")
    p.add_argument("--wrt", help="differentiate only these parameters, names or positions, e.g. "
                   "x,w (default: the function's wrt=, else every float argument)")
    p.set_defaults(run=show)


# ---- the command ---------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="fwdad", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    register_show(commands)
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
