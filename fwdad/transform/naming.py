"""Deterministic, readable names for temporaries and tangents.

Temporaries are t1, t2, ...; the tangent of `x` is `d_x` (Griewank's dx, with an underscore
so that a user's own `dx` stays distinct). Collisions get a numeric suffix, never a random one.

>>> names = Names({"x", "t1", "d_x"})
>>> names.temp(), names.tangent("x"), names.tangent("x"), names.fresh("np")
('t2', 'd_x_1', 'd_x_1', 'np')
"""


class Names:
    def __init__(self, taken=()):
        self.taken = set(taken)
        self.tangents = {}
        self.elements = {}       # a fused loop's scalar -> the array whose element it is
        self.primals = {}        # tangent -> its primal
        self.counter = 0

    def fresh(self, base):
        """`base` if unused, else base_1, base_2, ...; the result is reserved."""
        name, suffix = base, 0
        while name in self.taken:
            suffix += 1
            name = f"{base}_{suffix}"
        self.taken.add(name)
        return name

    def element(self, array):
        """The scalar holding one element of `array` inside a fused loop (`t3` -> `t3_i`)."""
        name = self.fresh(f"{array}_i")
        self.elements[name] = array
        return name

    def primal_of(self, name):
        """The primal whose tangent `name` is (or whose tangent's element, in a fused loop), else None."""
        return self.primals.get(self.elements.get(name, name))

    def temp(self):
        """The next unused t<N>."""
        while True:
            self.counter += 1
            name = f"t{self.counter}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def tangent(self, name):
        """The tangent variable of `name`, the same one every time."""
        if name not in self.tangents:
            self.tangents[name] = self.fresh(f"d_{name}")
            self.primals[self.tangents[name]] = name
        return self.tangents[name]
