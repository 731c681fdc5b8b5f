"""The import graph of fwdad: no cycles, and (almost) nothing imports upward.

Every module of fwdad/ is parsed with `ast` (imports at module level and inside functions
alike, so that a cycle hidden behind a function-level import counts); imports of optional
dependencies (mpi4py, numba.cuda, jax, torch) are not fwdad modules and are ignored. LAYERS
lists the layers from the bottom up (docs/how-it-works.md draws them): a module may import its
own layer and the layers below it. At most MAX_UPWARD imports may point up.
"""
import ast
import inspect
import os
import textwrap

import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "fwdad")
OPTIONAL = ("mpi4py", "numba.cuda", "jax", "torch")
MAX_UPWARD = 2

LAYERS = [          # bottom first; a name covers the module and everything under it
    ["fwdad.version", "fwdad.errors", "fwdad.options", "fwdad.codegen", "fwdad.data", "fwdad.layers"],
    ["fwdad.frontend", "fwdad.transform"],             # source -> normalized AST -> tangent AST
    ["fwdad.cache", "fwdad.random", "fwdad.runtime", "fwdad.sparse.runtime", "fwdad.coloring",
     "fwdad.device", "fwdad.nested"],
    ["fwdad.compiler"],                                # Unit, Specialization: the passes in order
    ["fwdad.execution", "fwdad.arguments"],            # running compiled code, checking arguments
    ["fwdad.drivers", "fwdad.sparse", "fwdad.second_order"],   # drivers around tangent code
    ["fwdad.train"],                                   # fgd's options, loops and chunked runs
    ["fwdad.targets"],                                 # cpu, parallel, cuda
    ["fwdad.api", "fwdad.prepared", "fwdad.optim", "fwdad.distributed"],   # the public entry points
    ["fwdad", "fwdad.models"],
    ["fwdad.bench"],
    ["fwdad.reproduce", "fwdad.cli"],
]


def module_files():
    """{module name: path} of every fwdad module."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                parts = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def imported(module, path, modules):
    """The fwdad modules `module` imports (anywhere in the file), as (name, line) pairs."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] +
                                ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith(OPTIONAL):
                continue
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.append((name, node.lineno))
    return out


def import_graph():
    modules = module_files()
    return {m: sorted(set(imported(m, p, modules))) for m, p in modules.items()}


def layer_of(module):
    """The index of the layer holding `module` (its longest matching name)."""
    best, index = "", None
    for i, names in enumerate(LAYERS):
        for name in names:
            covers = module == name or (name != "fwdad" and module.startswith(name + "."))
            if covers and len(name) > len(best):
                best, index = name, i
    return index


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph):
    """Imports from a module to a module of a higher layer: (importer, imported, line)."""
    return [(m, name, line) for m, edges in sorted(graph.items()) for name, line in edges
            if None not in (layer_of(name), layer_of(m)) and layer_of(name) > layer_of(m)]


GRAPH = import_graph()


def test_every_module_has_a_layer():
    assert [m for m in GRAPH if layer_of(m) is None] == []


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def package_of(module):
    """fwdad.bench.suites -> fwdad.bench; fwdad.api -> fwdad.api (a top-level module is its own)."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycles_between_packages():
    """Folders of different layers never import each other both ways (bench/ and reproduce/ did),
    not even through the upward imports the test below tolerates. Packages of one layer (frontend/
    and transform/ share transform/naming.py) may."""
    packages = {}
    for module, edges in GRAPH.items():
        packages.setdefault(package_of(module), set()).update(
            (package_of(name), line) for name, line in edges
            if package_of(name) != package_of(module) and layer_of(name) != layer_of(module))
    assert cycles({p: sorted(e) for p, e in packages.items() if p != "fwdad"}) == []


def test_at_most_two_imports_point_up():
    found = upward(GRAPH)
    assert len(found) <= MAX_UPWARD, "\n".join(f"{m} -> {n} (line {line})" for m, n, line in found)


@pytest.mark.parametrize("source, expected", [
    ("import fwdad.api", ["fwdad.api"]),
    ("from . import api", ["fwdad.api"]),
    ("from .api import jvp", ["fwdad.api"]),
    ("def f():\n    from .compiler import Unit", ["fwdad.compiler"]),
    ("from numba import cuda\nimport mpi4py", []),
])
def test_imports_are_found_at_every_level(tmp_path, source, expected):
    """The parser sees module-level and function-level, absolute and relative imports."""
    path = tmp_path / "probe.py"
    path.write_text(source)
    modules = {"fwdad", "fwdad.api", "fwdad.compiler", "fwdad.probe"}
    assert [name for name, _ in imported("fwdad.probe", str(path), modules)] == expected


def test_a_cycle_is_found():
    graph = {"a": [("b", 1)], "b": [("c", 1)], "c": [("a", 1)], "d": [("a", 1)]}
    assert cycles(graph) == [["a", "b", "c"]]


def parsed_modules(exclude=()):
    """(module name, AST) of every fwdad module outside the folders/files in `exclude`."""
    for module, path in sorted(module_files().items()):
        if not module.startswith(exclude):
            with open(path, encoding="utf-8") as f:
                yield module, ast.parse(f.read(), path)


TARGET_NAMES = {"cpu", "parallel", "cuda"}


def compares_a_target_name(node):
    return isinstance(node, ast.Compare) and any(
        isinstance(side, ast.Constant) and side.value in TARGET_NAMES
        for side in [node.left, *node.comparators])


def test_only_the_targets_compare_target_names():
    """A target is a class in fwdad/targets/; nothing else branches on its name (there were 10
    such comparisons in api.py, batch.py and optim.py, and compiler.py had a second 'target')."""
    found = [(module, node.lineno) for module, tree in parsed_modules(("fwdad.targets",))
             for node in ast.walk(tree) if compares_a_target_name(node)]
    assert found == []


def private_members(cls):
    """The private names of a class: its _methods and the self._attributes its methods assign."""
    names = {name for name in vars(cls) if name.startswith("_") and not name.startswith("__")}
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
              and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name)
              and node.value.id == "self" and node.attr.startswith("_")}
    return names


def reaches_into(tree, private):
    """(name, line) of every `x._name` in `tree` with _name in `private` and x other than self."""
    return [(node.attr, node.lineno) for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and node.attr in private and not (isinstance(node.value, ast.Name) and node.value.id == "self")]


def test_no_module_reaches_into_forward_function():
    """Driver caches live on the Specialization (spec.driver); every module, fwdad/api.py
    included, uses ForwardFunction's public methods (specialization, run, option_arguments,
    active_positions, is_current), never a private member of another ForwardFunction."""
    from fwdad.api import ForwardFunction
    private = private_members(ForwardFunction)
    assert {"_unit", "_last", "_prepared", "_arguments"} <= private
    found = [(module, name, line) for module, tree in parsed_modules() for name, line in reaches_into(tree, private)]
    assert found == []


def test_reaching_into_a_private_member_is_found():
    tree = ast.parse("f._unit.primal\nself._unit = None\nf.unit")
    assert reaches_into(tree, {"_unit"}) == [("_unit", 1)]


@pytest.mark.parametrize("source, found", [("if f.target == 'cuda': pass", True),
                                           ("if 'parallel' != t: pass", True),
                                           ("if mode == 'vector': pass", False)])
def test_target_comparisons_are_recognized(source, found):
    assert any(compares_a_target_name(n) for n in ast.walk(ast.parse(source))) == found
