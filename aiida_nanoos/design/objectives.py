"""Campaign objectives and property constraints, including user formulas such as ``0.6 * bandgap + 0.4 *
stability_score`` and ``bandgap >= 1.0``.

Formulas are parsed with :mod:`ast` and walked node by node against an allow-list (numbers, known property names,
``+ - * / **``, unary minus, parentheses, comparisons for constraints, and ``abs``/``min``/``max``); they are never
handed to Python's evaluator, so a formula stored in a campaign cannot run code. Anything outside the allow-list
raises ``ValueError`` naming the offending token, as do formulas too long, nested too deeply, with a huge constant
exponent (``bandgap ** 10**10``) or an overflowing constant part (``9**9**9``): every check is bounded. A formula with
no finite real value on one candidate raises :class:`FormulaError`: the campaign records that candidate as failed.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Properties a formula may use, with their units (the evaluators of the campaign produce these names).
KNOWN_PROPERTIES: dict[str, str] = {
    "bandgap": "eV",
    "formation_energy": "eV/atom",
    "stability_score": "dimensionless",
    "energy_above_hull": "eV/atom",
    "total_energy": "eV",
    "energy_per_atom": "eV/atom",
    "bulk_modulus": "GPa",
    "shear_modulus": "GPa",
    "density": "g/cm^3",
    "volume_per_atom": "Å^3/atom",
    "magnetic_moment": "μB",
    "fermi_energy": "eV",
    "work_function": "eV",
    "effective_mass": "m_e",
    "dielectric_constant": "dimensionless",
    "cost": "arbitrary",
}

#: Longer formulas are rejected before parsing (a formula is a line, not a program).
MAX_FORMULA_LENGTH = 1000
#: Deepest nesting of operators and calls (checked without recursion, so the evaluator never recurses deeper).
MAX_FORMULA_DEPTH = 100
#: Largest magnitude of an exponent written with constants only (``bandgap ** 2``, not ``bandgap ** 10**10``).
MAX_CONSTANT_EXPONENT = 64.0


class FormulaError(ValueError):
    """A valid formula that has no finite real value for one candidate (division by zero, overflow, a negative
    number to a fractional power)."""


def _power(base: Any, exponent: Any) -> Any:
    if np.isscalar(base) and np.isscalar(exponent) and base < 0 and not float(exponent).is_integer():
        raise ArithmeticError(f"negative number {base!r} to the fractional power {exponent!r}")
    return operator.pow(base, exponent)


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: _power,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCTIONS = {"abs": np.abs, "min": np.minimum, "max": np.maximum}
_SYMBOL = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.USub: "-",
    ast.UAdd: "+",
}


def _token(node: ast.AST, source: str) -> str:
    text = ast.get_source_segment(source, node)
    return text if text else type(node).__name__


class _Checker:
    """Walks a parsed formula; raises ValueError at the first node outside the allow-list; collects names."""

    def __init__(self, source: str, allowed_names: Sequence[str], allow_compare: bool) -> None:
        self.source = source
        self.allowed_names = set(allowed_names)
        self.allow_compare = allow_compare
        self.names: set[str] = set()

    def check(self, node: ast.AST) -> float | None:
        """Check ``node``; returns its value when it is made of constants only (folded to bound it), else None."""
        src = self.source
        if isinstance(node, ast.Expression):
            return self.check(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ValueError(f"formula {src!r}: constant {_token(node, src)!r} is not a number")
            return self._folded(node, lambda: float(node.value))
        if isinstance(node, ast.Name):
            if node.id in _FUNCTIONS:
                raise ValueError(f"formula {src!r}: {node.id!r} is a function and must be called")
            if node.id not in self.allowed_names:
                raise ValueError(f"formula {src!r}: unknown property {node.id!r} (known: {sorted(self.allowed_names)})")
            self.names.add(node.id)
            return None
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise ValueError(f"formula {src!r}: operator {type(node.op).__name__!r} is not allowed")
            left, right = self.check(node.left), self.check(node.right)
            if isinstance(node.op, ast.Pow) and right is not None and abs(right) > MAX_CONSTANT_EXPONENT:
                raise ValueError(
                    f"formula {src!r}: exponent {_token(node.right, src)!r} = {right:g} is too large "
                    f"(at most {MAX_CONSTANT_EXPONENT:g} in magnitude)"
                )
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError(f"formula {src!r}: division by the constant zero {_token(node.right, src)!r}")
            if left is None or right is None:
                return None
            return self._folded(node, lambda: _BINOPS[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ValueError(f"formula {src!r}: unary operator {type(node.op).__name__!r} is not allowed")
            operand = self.check(node.operand)
            return None if operand is None else self._folded(node, lambda: _UNARY[type(node.op)](operand))
        if isinstance(node, ast.Call):
            return self._check_call(node)
        if isinstance(node, ast.Compare):
            if not self.allow_compare:
                raise ValueError(f"formula {src!r}: comparison {_token(node, src)!r} is only allowed in constraints")
            for op in node.ops:
                if type(op) not in _COMPARE:
                    raise ValueError(f"formula {src!r}: comparison operator {type(op).__name__!r} is not allowed")
            self.check(node.left)
            for comp in node.comparators:
                self.check(comp)
            return None
        if isinstance(node, ast.Attribute):
            raise ValueError(f"formula {src!r}: attribute access {_token(node, src)!r} is not allowed")
        raise ValueError(f"formula {src!r}: {_token(node, src)!r} ({type(node).__name__}) is not allowed")

    def _check_call(self, node: ast.Call) -> float | None:
        src, func = self.source, node.func
        if not isinstance(func, ast.Name) or func.id not in _FUNCTIONS:
            raise ValueError(f"formula {src!r}: call to {_token(func, src)!r} is not allowed (only abs, min, max)")
        if node.keywords:
            raise ValueError(f"formula {src!r}: keyword arguments in {_token(node, src)!r} are not allowed")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise ValueError(f"formula {src!r}: starred argument {_token(arg, src)!r} is not allowed")
        args = [self.check(arg) for arg in node.args]
        n_args = len(node.args)
        if (func.id == "abs" and n_args != 1) or (func.id != "abs" and n_args < 2):
            raise ValueError(f"formula {src!r}: wrong number of arguments in {_token(node, src)!r}")
        if any(a is None for a in args):
            return None
        return self._folded(node, lambda: float(_call(func.id, args)))

    def _folded(self, node: ast.AST, compute) -> float:
        """The value of a constant part, refused when it is not a finite real number (``9 ** 400``, ``1e999``)."""
        try:
            value = compute()
        except (ArithmeticError, ValueError) as exc:
            raise ValueError(f"formula {self.source!r}: constant part {_token(node, self.source)!r}: {exc}") from exc
        if isinstance(value, complex) or not math.isfinite(value):
            raise ValueError(f"formula {self.source!r}: constant part {_token(node, self.source)!r} is not finite")
        return float(value)


def _call(name: str, args: Sequence[Any]) -> Any:
    if name == "abs":
        return np.abs(args[0])
    out = args[0]
    for a in args[1:]:
        out = _FUNCTIONS[name](out, a)
    return out


def _depth(tree: ast.AST) -> int:
    """Nesting depth of a parsed formula, measured without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _evaluate(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return np.asarray(values[node.id], dtype=float) if not np.isscalar(values[node.id]) else float(values[node.id])
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    if isinstance(node, ast.Call):
        return _call(node.func.id, [_evaluate(a, values) for a in node.args])
    raise TypeError(f"cannot evaluate {type(node).__name__}")  # unreachable after _Checker


@dataclass(frozen=True)
class Expression:
    """An arithmetic formula of material properties, validated at construction."""

    source: str
    allowed_names: tuple[str, ...] = tuple(KNOWN_PROPERTIES)
    tree: ast.Expression = field(init=False, repr=False, compare=False)
    properties: frozenset[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        tree, names = _parse(self.source, self.allowed_names, allow_compare=False)
        object.__setattr__(self, "tree", tree)
        object.__setattr__(self, "properties", frozenset(names))

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Value for one candidate (floats) or many (arrays of equal length)."""
        missing = sorted(self.properties - set(values))
        if missing:
            raise KeyError(f"formula {self.source!r} needs properties {missing}")
        return _checked(self.source, values, lambda: _evaluate(self.tree, values))


def _checked(source: str, values: Mapping[str, Any], compute) -> Any:
    """``compute()``; on scalars a division by zero, an overflow or a value that is not a finite real number raises
    :class:`FormulaError` naming formula and values (arrays give NaN / inf where a candidate has no value)."""
    shown = {k: values[k] for k in sorted(values) if np.isscalar(values[k])}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        try:
            out = compute()
        except ArithmeticError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise FormulaError(f"formula {source!r} cannot be evaluated for {shown}: {reason}") from exc
    if np.isscalar(out) and (isinstance(out, complex) or not math.isfinite(out)):
        raise FormulaError(f"formula {source!r} is not a finite real number for {shown}: {out!r}")
    return out


def _parse(source: str, allowed_names: Sequence[str], allow_compare: bool) -> tuple[ast.Expression, set[str]]:
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"formula must be a non-empty string, got {source!r}")
    if len(source) > MAX_FORMULA_LENGTH:
        raise ValueError(f"formula {source[:40]!r}...: longer than {MAX_FORMULA_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
        if _depth(tree) > MAX_FORMULA_DEPTH:
            raise ValueError(f"formula {source[:40]!r}...: nested too deeply (more than {MAX_FORMULA_DEPTH} levels)")
        checker = _Checker(source.strip(), allowed_names, allow_compare)
        checker.check(tree)
    except SyntaxError as exc:
        raise ValueError(f"formula {source!r}: syntax error at {exc.text!r}") from exc
    except RecursionError as exc:
        raise ValueError(f"formula {source[:40]!r}...: nested too deeply") from exc
    return tree, checker.names


def parse_expression(source: str, allowed_names: Sequence[str] | None = None) -> Expression:
    """Validate an objective formula; ``allowed_names`` defaults to :data:`KNOWN_PROPERTIES`."""
    return Expression(source, tuple(allowed_names) if allowed_names is not None else tuple(KNOWN_PROPERTIES))


@dataclass(frozen=True)
class Constraint:
    """A property constraint such as ``bandgap >= 1.0`` or ``1.0 <= bandgap <= 3.0``.

    ``margin`` is positive when satisfied and measures by how much, in the units of the expression; a GP on it gives
    P(feasible) for the acquisition.
    """

    source: str
    allowed_names: tuple[str, ...] = tuple(KNOWN_PROPERTIES)
    tree: ast.Expression = field(init=False, repr=False, compare=False)
    properties: frozenset[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        tree, names = _parse(self.source, self.allowed_names, allow_compare=True)
        if not isinstance(tree.body, ast.Compare):
            raise ValueError(f"constraint {self.source!r}: needs a comparison such as 'bandgap >= 1.0'")
        object.__setattr__(self, "tree", tree)
        object.__setattr__(self, "properties", frozenset(names))

    @classmethod
    def from_spec(cls, spec: str | Mapping[str, Any], allowed_names: Sequence[str] | None = None) -> Constraint:
        """From a string, or the campaign form ``{"property": "bandgap", "min": 1.0, "max": 3.0}``."""
        names = tuple(allowed_names) if allowed_names is not None else tuple(KNOWN_PROPERTIES)
        if isinstance(spec, str):
            return cls(spec, names)
        unknown = sorted(set(spec) - {"property", "min", "max"})
        if unknown:
            raise ValueError(f"constraint {dict(spec)}: unknown keys {unknown}")
        prop = spec.get("property")
        if not isinstance(prop, str) or not prop.isidentifier():
            raise ValueError(f"constraint {dict(spec)}: 'property' must be a property name, got {prop!r}")
        lo, hi = spec.get("min"), spec.get("max")
        for key, value in (("min", lo), ("max", hi)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"constraint {dict(spec)}: {key!r} must be a number, got {value!r}")
        if lo is None and hi is None:
            raise ValueError(f"constraint {dict(spec)}: needs 'min' and/or 'max'")
        if lo is not None and hi is not None:
            if lo > hi:
                raise ValueError(f"constraint {dict(spec)}: min {lo} > max {hi}")
            return cls(f"{lo!r} <= {prop} <= {hi!r}", names)
        return cls(f"{prop} >= {lo!r}" if lo is not None else f"{prop} <= {hi!r}", names)

    def _terms(self, values: Mapping[str, Any]) -> list[Any]:
        """The values of the sides of the comparison (:class:`FormulaError` when one has none for a candidate)."""
        missing = sorted(self.properties - set(values))
        if missing:
            raise KeyError(f"constraint {self.source!r} needs properties {missing}")
        body = self.tree.body
        return [_checked(self.source, values, lambda n=n: _evaluate(n, values)) for n in (body.left, *body.comparators)]

    def margin(self, values: Mapping[str, Any]) -> Any:
        """min over the comparisons of (larger side - smaller side); >= 0 means satisfied."""
        terms = self._terms(values)
        margins = []
        for op, a, b in zip(self.tree.body.ops, terms[:-1], terms[1:], strict=True):
            margins.append(_checked(self.source, values, lambda a=a, b=b, op=op: _margin(op, a, b)))
        out = margins[0]
        for m in margins[1:]:
            out = np.minimum(out, m)
        return out

    def is_satisfied(self, values: Mapping[str, Any]) -> Any:
        terms = self._terms(values)
        ok: Any = True
        for op, a, b in zip(self.tree.body.ops, terms[:-1], terms[1:], strict=True):
            ok = np.logical_and(ok, _COMPARE[type(op)](a, b))
        return ok


def _margin(op: ast.cmpop, a: Any, b: Any) -> Any:
    return b - a if isinstance(op, ast.Lt | ast.LtE) else a - b


@dataclass(frozen=True)
class Objective:
    """What a campaign optimises: a formula, its direction, optional target range and constraints.

    ``score`` orients the value so that higher is always better (the convention of the acquisition functions).
    """

    name: str
    expression: Expression
    direction: str = "maximize"
    constraints: tuple[Constraint, ...] = ()
    target_range: tuple[float, float] | None = None
    units: str = ""

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"objective {self.name!r}: direction must be 'maximize' or 'minimize'")
        if self.target_range is not None:
            lo, hi = self.target_range
            if not lo < hi:
                raise ValueError(f"objective {self.name!r}: target_range needs low < high, got {self.target_range}")

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    @property
    def properties(self) -> frozenset[str]:
        """Every property the evaluator must compute (objective and constraints)."""
        out = set(self.expression.properties)
        for c in self.constraints:
            out |= c.properties
        return frozenset(out)

    def value(self, values: Mapping[str, Any]) -> Any:
        """The formula's value (for a target range: minus the distance to the range, 0 inside it)."""
        v = self.expression.evaluate(values)
        if self.target_range is None:
            return v
        lo, hi = self.target_range
        return -(np.maximum(lo - v, 0.0) + np.maximum(v - hi, 0.0))

    def score(self, values: Mapping[str, Any]) -> Any:
        """Higher is better."""
        v = self.value(values)
        return v if self.maximize else -v

    def is_feasible(self, values: Mapping[str, Any]) -> Any:
        ok: Any = True
        for c in self.constraints:
            ok = np.logical_and(ok, c.is_satisfied(values))
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "formula": self.expression.source,
            "direction": self.direction,
            "constraints": [c.source for c in self.constraints],
            "target_range": None if self.target_range is None else list(self.target_range),
            "units": self.units,
        }


def _constraint_list(items: Any, where: str) -> list[Any]:
    """A list of constraint specs (strings or ``{property, min, max}``); anything else is refused naming ``where``."""
    if items is None:
        return []
    if isinstance(items, str | Mapping) or not isinstance(items, list | tuple):
        raise ValueError(f"{where}: must be a list of constraints, got {items!r}"[:300])
    bad = [c for c in items if not isinstance(c, str | Mapping)]
    if bad:
        raise ValueError(f"{where}: each constraint is a text or a mapping, got {bad[0]!r}"[:300])
    return list(items)


#: Keys each kind of objective spec takes besides objective, name and constraints.
_OBJECTIVE_KEYS = {"custom": {"formula", "direction"}, "target_range": {"property", "range"}}

STANDARD_OBJECTIVES: dict[str, tuple[str, str]] = {
    "maximize_bandgap": ("bandgap", "maximize"),
    "minimize_formation_energy": ("formation_energy", "minimize"),
    "maximize_stability": ("stability_score", "maximize"),
}


def get_objective(spec: str | Mapping[str, Any], extra_properties: Sequence[str] = ()) -> Objective:
    """Objective from a name (``"maximize_bandgap"``) or a dict as stored by a campaign:

    * ``{"objective": "maximize_bandgap", "constraints": [...]}``
    * ``{"objective": "custom", "formula": "0.6 * bandgap + 0.4 * stability_score", "direction": "maximize",
      "constraints": ["bandgap >= 1.0", {"property": "stability_score", "min": 0.7}]}``
    * ``{"objective": "target_range", "property": "bandgap", "range": [1.1, 1.5]}``

    ``extra_properties`` extends :data:`KNOWN_PROPERTIES` for evaluators that produce other quantities.
    """
    names = tuple(KNOWN_PROPERTIES) + tuple(extra_properties)
    if isinstance(spec, str):
        spec = {"objective": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"objective: must be a name or a mapping, got {spec!r}"[:300])
    spec = dict(spec)
    kind = spec.get("objective")
    if not isinstance(kind, str):
        raise ValueError(f"objective: 'objective' must be a name, got {kind!r}"[:300])
    allowed = {"objective", "constraints", "name"} | _OBJECTIVE_KEYS.get(kind, set())
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"objective {kind!r}: unknown keys {unknown} (allowed {sorted(allowed)})"[:400])
    if "name" in spec and (not isinstance(spec["name"], str) or not spec["name"].strip()):
        raise ValueError(f"objective.name: must be a non-empty string, got {spec['name']!r}"[:300])
    listed = _constraint_list(spec.get("constraints"), "constraints")
    constraints = tuple(Constraint.from_spec(c, names) for c in listed)
    if kind in STANDARD_OBJECTIVES:
        prop, direction = STANDARD_OBJECTIVES[kind]
        return Objective(kind, Expression(prop, names), direction, constraints, units=KNOWN_PROPERTIES[prop])
    if kind == "custom":
        formula = spec.get("formula")
        if formula is None:
            raise ValueError("objective 'custom': needs a 'formula'")
        return Objective(
            spec.get("name", "custom"), Expression(formula, names), spec.get("direction", "maximize"), constraints
        )
    if kind == "target_range":
        prop = spec.get("property")
        rng = spec.get("range")
        if not isinstance(prop, str):
            raise ValueError("objective 'target_range': needs 'property'")
        if (
            isinstance(rng, str | Mapping)
            or not isinstance(rng, list | tuple)
            or len(rng) != 2
            or not all(not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) for v in rng)
        ):
            raise ValueError(f"objective 'target_range': 'range' must be [low, high], two finite numbers, got {rng!r}")
        return Objective(
            f"target_range_{prop}",
            Expression(prop, names),
            "maximize",
            constraints,
            target_range=(float(rng[0]), float(rng[1])),
            units=KNOWN_PROPERTIES.get(prop, ""),
        )
    raise ValueError(
        f"objective: unknown objective {kind!r} (one of {sorted(STANDARD_OBJECTIVES)}, 'custom', 'target_range')"
    )


# ---------------------------------------------------------------------------------------------- a campaign's
@dataclass(frozen=True)
class CampaignObjective:
    """One objective, or several for a Pareto search, plus the property constraints every candidate must meet."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    @property
    def maximize(self) -> bool:
        """Direction of the campaign's figure of merit (for several objectives: the hypervolume, maximised)."""
        return True if self.multi else self.primary.maximize

    @property
    def directions(self) -> list[str]:
        return ["max" if o.maximize else "min" for o in self.objectives]

    @property
    def properties(self) -> frozenset[str]:
        out: set[str] = set()
        for o in self.objectives:
            out |= o.properties
        for c in self.constraints:
            out |= c.properties
        return frozenset(out)

    @classmethod
    def from_spec(
        cls, spec: str | Mapping[str, Any], extra_constraints: Sequence[Any] = (), extra_properties: Sequence[str] = ()
    ) -> CampaignObjective:
        """From a name, a single-objective spec (see :func:`~aiida_nanoos.design.objectives.get_objective`) or
        ``{"objectives": [spec, spec, ...], "constraints": [...]}`` for several objectives at once."""
        names = tuple(KNOWN_PROPERTIES) + tuple(extra_properties)
        if isinstance(spec, Mapping) and "objectives" in spec:
            unknown = sorted(set(spec) - {"objectives", "constraints"})
            if unknown:
                raise ValueError(f"objective: unknown keys {unknown} next to 'objectives'")
            specs = spec["objectives"]
            if isinstance(specs, str | Mapping) or not specs:
                raise ValueError("objective.objectives: must be a non-empty list of objective specs")
            objectives = []
            for i, s in enumerate(specs):
                try:
                    objectives.append(get_objective(s, extra_properties))
                except ValueError as exc:
                    raise ValueError(f"objective.objectives[{i}]: {exc}") from exc
            top = spec.get("constraints") or ()
        else:
            try:
                objectives = [get_objective(spec, extra_properties)]
            except ValueError as exc:
                raise ValueError(f"objective: {exc}") from exc
            top = ()
        constraints: list[Constraint] = []
        for o in objectives:
            constraints.extend(o.constraints)
        for where, items in (("objective.constraints", top), ("constraints.properties", extra_constraints)):
            for i, c in enumerate(_constraint_list(items, where)):
                try:
                    constraints.append(Constraint.from_spec(c, names))
                except ValueError as exc:
                    raise ValueError(f"{where}[{i}]: {exc}") from exc
        return cls(tuple(objectives), tuple(constraints))

    def evaluate(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Objective values of one candidate: ``raw`` formula values, ``values`` (with target-range distance),
        constraint ``margins`` (>= 0 satisfied) and ``feasible``. ``ValueError`` when a property is missing or not
        a finite number, and :class:`FormulaError` when a formula divides by zero, overflows or is not a real number
        on these values (the evaluation is then recorded as failed, with this message as its reason)."""
        needed = sorted(self.properties)
        missing = [p for p in needed if p not in properties]
        if missing:
            raise ValueError(f"the evaluator did not return {missing}")
        numbers = {}
        for p in needed:
            value = properties[p]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
                raise ValueError(f"property {p!r} is not a finite number: {value!r}")
            numbers[p] = float(value)
        raw = [float(o.expression.evaluate(numbers)) + 0.0 for o in self.objectives]
        values = [float(o.value(numbers)) + 0.0 for o in self.objectives]  # + 0.0: no "-0" inside a target window
        margins = [float(c.margin(numbers)) for c in self.constraints]
        return {"raw": raw, "values": values, "margins": margins, "feasible": all(m >= 0 for m in margins)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.source for c in self.constraints],
            "directions": self.directions,
        }
