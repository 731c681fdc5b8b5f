"""Activity: the two copies of a model that fgd(gradient="activity") runs at every step.

Activity perturbation (Ren, Kornblith, Liao, Hinton, ICLR 2023) perturbs the output z of each
layer instead of the weights. This pass rewrites the user's model, a function returning
per-example losses, at its layers (`fwdad.dense`, `fwdad.dense_relu`, fwdad/layers.py):

* the probe: each layer's value gets a tangent of `fwdad_eps` times fresh counter-based noise
  (`fwdad_inject`), keyed by the step's key and the layer's number in evaluation order, so the
  JVP along `fwdad_eps` is, per example, the directional derivative of its losses along the
  noise of every layer;
* the update: each layer is computed by `fwdad_update`, which draws the same noise again,
  forms g_z = (directional derivative) * noise and adds x^T g_z and the column sums of g_z to
  the gradients of the parameters W and b are views of.

`fwdad_site` counts the layers evaluated so far; it is advanced after each statement, so that a
layer inside a loop gets a new number at every iteration.

>>> import ast
>>> from fwdad import layers
>>> tree = ast.parse('''
... def f(theta, X):
...     h = X
...     for layer in range(2):
...         h = dense_relu(h, theta[layer], theta[2 + layer, 0])
...     return h.sum(axis=1)
... ''').body[0]
>>> resolve = lambda node: layers.dense_relu if getattr(node, "id", "") == "dense_relu" else None
>>> print(ast.unparse(probe(tree, resolve, "model.py")))
def f(theta, X, fwdad_eps, fwdad_key):
    fwdad_site = 0
    h = X
    for layer in range(2):
        h = fwdad_inject_active(dense_relu(h, theta[layer], theta[2 + layer, 0]), fwdad_eps, fwdad_key + (fwdad_site + 0))
        fwdad_site = fwdad_site + 1
    return h.sum(axis=1)
"""
import ast
import copy
import inspect

from .. import layers
from ..errors import UnsupportedSyntaxError, located

RELU_AFTER = {layers.dense: False, layers.dense_relu: True}     # a layer -> a ReLU follows it
PROBE_PARAMS = ("fwdad_eps", "fwdad_key")
UPDATE_PARAMS = ("fwdad_state", "fwdad_params", "fwdad_grads")
SITE = "fwdad_site"


def probe(tree, resolve, filename):
    """The model with noise injected at every layer (see the module docstring)."""
    def site(call, relu, number):
        inject = "fwdad_inject_active" if relu else "fwdad_inject"
        key = ast.BinOp(ast.Name("fwdad_key", ast.Load()), ast.Add(), site_number(number))
        return ast.Call(ast.Name(inject, ast.Load()), [call, ast.Name("fwdad_eps", ast.Load()), key], [])
    return rewrite(tree, resolve, filename, site, PROBE_PARAMS)


def update(tree, resolve, filename):
    """The model with every layer computed by fwdad_update (see the module docstring)."""
    def site(call, relu, number):
        x, W, b, loss, groups = layer_arguments(call, filename)
        args = [x, W, b, ast.Constant(relu), loss, groups, site_number(number)] + \
            [ast.Name(name, ast.Load()) for name in UPDATE_PARAMS]
        return ast.Call(ast.Name("fwdad_update", ast.Load()), args, [])
    return rewrite(tree, resolve, filename, site, UPDATE_PARAMS)


def held(tree, resolve, filename):
    """The model with each layer's W and b passed through fwdad_stop (stop_gradient): its JVP
    along the parameters is zero unless a parameter reaches the losses outside a layer (a
    penalty on the weights, a layer inside a helper), which activity perturbation would miss."""
    def site(call, relu, number):
        x, W, b, loss, groups = layer_arguments(call, filename)
        stop = [ast.Call(ast.Name("fwdad_stop", ast.Load()), [value], []) for value in (W, b)]
        return ast.Call(call.func, [x] + stop + [loss, groups], [])
    return rewrite(tree, resolve, filename, site, ())


def layer_lines(tree):
    """The lines of the layers a rewritten model computes (for messages)."""
    return sorted({node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                   and isinstance(node.func, ast.Name) and node.func.id.startswith("fwdad_inject")})


def site_number(number):
    return ast.BinOp(ast.Name(SITE, ast.Load()), ast.Add(), ast.Constant(number))


def layer_arguments(call, filename):
    """(x, W, b, loss, groups) of a call of dense or dense_relu, whatever the argument form."""
    try:
        bound = inspect.signature(layers.dense).bind(*call.args, **{k.arg: k.value for k in call.keywords})
    except TypeError as error:
        raise located(UnsupportedSyntaxError, filename, call.lineno, f"a layer call with arguments "
                      f"fwdad cannot read: {error}", "call it as dense(x, W, b) or dense(x, W, b, loss=i)")
    given = bound.arguments
    return given["x"], given["W"], given["b"], given.get("loss", ast.Constant(0)), \
        given.get("groups", ast.Constant(1))


def rewrite(tree, resolve, filename, site, params):
    """A copy of `tree` with each layer call replaced by site(call, relu, number) and the
    counter advanced after each statement that evaluates layers."""
    tree = copy.deepcopy(tree)
    tree.args.args += [ast.arg(name) for name in params]
    tree.decorator_list = []
    start = ast.Assign([ast.Name(SITE, ast.Store())], ast.Constant(0))
    tree.body = [start] + block(tree.body, Layers(resolve, filename, site))
    return ast.fix_missing_locations(tree)


def block(statements, layers_of):
    out = []
    for statement in statements:
        if isinstance(statement, (ast.If, ast.While, ast.For)):
            header = statement.test if not isinstance(statement, ast.For) else statement.iter
            layers_of.refuse_in(header, "a loop's or an if's header")
            statement.body, statement.orelse = block(statement.body, layers_of), block(statement.orelse, layers_of)
            out.append(statement)
            continue
        count = layers_of.replace(statement)
        out.append(statement)
        if count and not isinstance(statement, ast.Return):
            step = ast.BinOp(ast.Name(SITE, ast.Load()), ast.Add(), ast.Constant(count))
            out.append(ast.copy_location(ast.Assign([ast.Name(SITE, ast.Store())], step), statement))
    return out


class Layers(ast.NodeTransformer):
    """Replaces the layer calls of one statement, numbered in evaluation order (arguments first)."""

    def __init__(self, resolve, filename, site):
        self.resolve, self.filename, self.site = resolve, filename, site
        self.count = 0

    def relu_after(self, node):
        if not isinstance(node, ast.Call):
            return None
        function = self.resolve(node.func)
        try:
            return RELU_AFTER.get(function)
        except TypeError:               # unhashable
            return None

    def refuse_in(self, node, where):
        for inner in ast.walk(node):
            if self.relu_after(inner) is not None:
                raise located(UnsupportedSyntaxError, self.filename, inner.lineno,
                              f"a layer (fwdad.dense / dense_relu) in {where}: activity perturbation "
                              "numbers layers statement by statement",
                              "compute the layer in a statement of its own before it")

    def replace(self, statement):
        for node in ast.walk(statement):
            if isinstance(node, (ast.IfExp, ast.BoolOp, ast.Lambda, ast.ListComp, ast.GeneratorExp)):
                self.refuse_in(node, "an expression evaluated conditionally")
        self.count = 0
        self.visit(statement)
        return self.count

    def visit_Call(self, node):
        self.generic_visit(node)
        relu = self.relu_after(node)
        if relu is None:
            return node
        replaced = ast.copy_location(self.site(node, relu, self.count), node)
        self.count += 1
        return replaced
