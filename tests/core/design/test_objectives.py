"""Specification of objectives and constraints parsed from user formulas (no Python evaluation of user text)."""

import numpy as np
import pytest

from aiida_nanoos.design.objectives import Constraint, get_objective, parse_expression

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_weighted_formula_value_and_properties():
    expr = parse_expression("0.6 * bandgap + 0.4 * stability_score")
    assert expr.properties == {"bandgap", "stability_score"}
    assert expr.evaluate({"bandgap": 2.0, "stability_score": 0.5}) == pytest.approx(1.4)
    values = expr.evaluate({"bandgap": np.array([1.0, 3.0]), "stability_score": np.array([1.0, 0.0])})
    np.testing.assert_allclose(values, [1.0, 1.8])


def test_operators_functions_and_precedence():
    expr = parse_expression("-(bandgap - 1.5) ** 2 / 2 + abs(formation_energy) - max(bandgap, 3, 2) + min(1, 2)")
    v = expr.evaluate({"bandgap": 2.5, "formation_energy": -0.25})
    assert v == pytest.approx(-(1.0**2) / 2 + 0.25 - 3 + 1)


@pytest.mark.parametrize(
    ("formula", "token"),
    [
        ("__import__('os')", "__import__"),
        ("bandgap.__class__", "bandgap.__class__"),
        ("bandgap + density_of_unicorns", "density_of_unicorns"),
        ("open('x')", "open"),
        ("bandgap if bandgap else 0", "IfExp"),
        ("[bandgap]", "List"),
        ("bandgap + 'a'", "'a'"),
        ("lambda: 1", "Lambda"),
        ("bandgap % 2", "Mod"),
        ("bandgap >= 1", "comparison"),
        ("max(bandgap, key=abs)", "keyword"),
        ("abs", "abs"),
        ("True + bandgap", "True"),
    ],
)
def test_formula_rejects_anything_outside_the_allow_list(formula, token):
    with pytest.raises(ValueError) as err:
        parse_expression(formula)
    assert token in str(err.value)


def test_syntax_error_and_oversized_formulas_are_value_errors():
    with pytest.raises(ValueError, match="syntax"):
        parse_expression("bandgap +")
    with pytest.raises(ValueError, match="longer than"):
        parse_expression("+".join(["bandgap"] * 300))
    with pytest.raises(ValueError, match="nested too deeply|syntax"):
        parse_expression("-" * 990 + "bandgap")


def test_constraints_from_text_and_from_the_campaign_dict():
    c = Constraint("bandgap >= 1.0")
    assert c.is_satisfied({"bandgap": 1.2}) and not c.is_satisfied({"bandgap": 0.8})
    assert c.margin({"bandgap": 0.8}) == pytest.approx(-0.2)
    chained = Constraint.from_spec({"property": "bandgap", "min": 1.0, "max": 3.0})
    assert chained.is_satisfied({"bandgap": 2.0}) and not chained.is_satisfied({"bandgap": 3.5})
    assert chained.margin({"bandgap": 2.9}) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="comparison"):
        Constraint("bandgap + 1")
    with pytest.raises(ValueError, match="unknown property 'unobtainium'"):
        Constraint("unobtainium > 1")


def test_standard_objectives_know_direction_and_properties():
    gap = get_objective("maximize_bandgap")
    assert gap.maximize and gap.properties == {"bandgap"} and gap.units == "eV"
    form = get_objective("minimize_formation_energy")
    assert not form.maximize
    assert form.score({"formation_energy": -1.5}) == pytest.approx(1.5)  # higher score = more stable
    assert get_objective("maximize_stability").properties == {"stability_score"}


def test_custom_objective_with_constraints():
    obj = get_objective(
        {
            "objective": "custom",
            "formula": "0.6 * bandgap + 0.4 * stability_score",
            "constraints": ["bandgap >= 1.0", {"property": "stability_score", "min": 0.7}],
        }
    )
    props = {"bandgap": 2.0, "stability_score": 0.9}
    assert obj.value(props) == pytest.approx(1.56)
    assert obj.is_feasible(props)
    assert not obj.is_feasible({"bandgap": 2.0, "stability_score": 0.6})
    assert obj.properties == {"bandgap", "stability_score"}


def test_target_range_objective_is_zero_inside_and_negative_distance_outside():
    obj = get_objective({"objective": "target_range", "property": "bandgap", "range": [1.1, 1.5]})
    assert obj.value({"bandgap": 1.3}) == 0.0
    assert obj.value({"bandgap": 2.0}) == pytest.approx(-0.5)
    assert obj.value({"bandgap": 0.6}) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="low < high"):
        get_objective({"objective": "target_range", "property": "bandgap", "range": [2, 1]})


def test_unknown_objective_and_extra_properties():
    with pytest.raises(ValueError, match="maximize_tc"):
        get_objective("maximize_tc")
    obj = get_objective({"objective": "custom", "formula": "tc / 100"}, extra_properties=["tc"])
    assert obj.value({"tc": 90.0}) == pytest.approx(0.9)
