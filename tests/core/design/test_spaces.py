"""Specification of design spaces: validation messages, encoding, sampling, structures and JSON round trip."""

import json

import numpy as np
import pytest
from ase.build import mx2

from aiida_nanoos.design.dimensions import project_to_bounded_simplex
from aiida_nanoos.design.spaces import (
    Categorical,
    Composition,
    Continuous,
    ElementConstraints,
    Integer,
    ParameterSpace,
    Strain,
    StructureConstraints,
    Substitution,
)

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _mos2_space(**kwargs):
    base = mx2("MoS2", size=(2, 2, 1), vacuum=10.0)  # 4 Mo + 8 S
    return ParameterSpace(
        [
            Substitution("dopant", host="Mo", dopants=("W", "Nb"), fraction=(0.0, 0.5)),
            Strain("strain", {"a": (-0.03, 0.03), "b": (-0.03, 0.03)}),
            Continuous("temperature", 300.0, 900.0),
        ],
        base_structure=base,
        **kwargs,
    )


def _mixed_space():
    return ParameterSpace(
        [
            Continuous("rate", 1e-3, 1.0, log=True),
            Integer("layers", 1, 5),
            Categorical("substrate", ("SiO2", "sapphire", "hBN")),
            Composition("alloy", ("Mo", "W", "Cr"), max_fractions=(1.0, 0.8, 0.3)),
        ]
    )


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Continuous("x", 2.0, 1.0), "dimension 'x': empty or inverted range"),
        (lambda: Continuous("x", 1.0, 1.0), "dimension 'x': empty or inverted range"),
        (lambda: Continuous("conc", 0.0, 1.0, log=True), "dimension 'conc': a log-scale range needs low > 0"),
        (lambda: Integer("n", 5, 2), "dimension 'n'"),
        (lambda: Integer("n", 1.5, 2), "dimension 'n': low must be an integer"),
        (lambda: Categorical("c", ()), "dimension 'c': choices must not be empty"),
        (lambda: Composition("alloy", ("Mo", "W"), min_fractions=(0.6, 0.6)), "composition 'alloy': fractions cannot"),
        (lambda: Composition("alloy", ("Mo", "W"), max_fractions=(0.3, 0.3)), "composition 'alloy': fractions cannot"),
        (lambda: Composition("alloy", ("Mo",)), "composition 'alloy': components"),
        (lambda: Substitution("s", host="Mo", dopants=("Xx",)), "substitution 's' dopants: unknown element 'Xx'"),
        (lambda: Substitution("s", host="Q", dopants=("W",)), "substitution 's' host: unknown element 'Q'"),
        (lambda: Substitution("s", host="Mo", dopants=("W",), fraction=(0.5, 1.5)), "substitution 's' fraction"),
        (lambda: Strain("eps", {"a": (0.02, -0.02)}), "strain 'eps' range 'a'"),
        (lambda: Strain("eps", {"d": (-0.02, 0.02)}), "strain 'eps': unknown axis 'd'"),
        (lambda: ElementConstraints(allowed=("Mo", "Unobtainium")), "allowed_elements: unknown element"),
        (lambda: ElementConstraints(allowed=("Mo",), forbidden=("Mo",)), "forbidden_elements"),
        (lambda: ElementConstraints(max_num_elements=0), "max_num_elements"),
        (lambda: StructureConstraints(min_atoms_per_cell=10, max_atoms_per_cell=5), "max_atoms_per_cell"),
        (lambda: ParameterSpace([Continuous("x", 0, 1), Continuous("x", 0, 2)]), "dimensions: duplicate names"),
        (lambda: ParameterSpace([Strain("eps", {"a": (-0.01, 0.01)})]), "base_structure: required"),
        (
            lambda: _mos2_space(element_constraints=ElementConstraints(forbidden=("Nb",))),
            "substitution 'dopant' dopants: 'Nb' is excluded",
        ),
        (
            lambda: _mos2_space(structure_constraints=StructureConstraints(max_atoms_per_cell=6)),
            "base_structure: violates",
        ),
    ],
)
def test_invalid_specs_name_the_offending_field(build, field):
    with pytest.raises(ValueError) as err:
        build()
    assert field in str(err.value)


def test_substitution_host_must_be_in_base_structure():
    with pytest.raises(ValueError, match="substitution 'd' host: 'Ti' is not in the base structure"):
        ParameterSpace([Substitution("d", host="Ti", dopants=("Zr",))], base_structure=mx2("MoS2"))


def test_encoding_is_in_unit_box_and_decodes_back():
    space = _mixed_space()
    points = space.sample(50, seed=3)
    U = space.encode(points)
    assert U.shape == (50, 1 + 1 + 3 + 3)
    assert U.min() >= 0.0 and U.max() <= 1.0
    again = space.decode(U)
    for p, q in zip(points, again, strict=True):
        assert q["rate"] == pytest.approx(p["rate"])
        assert q["layers"] == p["layers"] and q["substrate"] == p["substrate"]
        assert q["alloy"] == pytest.approx(p["alloy"])
        space.validate_point(q)
    assert np.all(np.abs(np.log10([p["rate"] for p in points])) <= 3.0)


def test_projection_rounds_integers_one_hot_and_simplex():
    space = _mixed_space()
    u = np.array([[0.5, 0.6, 0.2, 0.7, 0.4, 0.9, 0.9, 0.9]])
    p = space.decode(u)[0]
    assert p["layers"] == 3  # 1 + round(0.6 * 4)
    assert p["substrate"] == "sapphire"
    assert sum(p["alloy"].values()) == pytest.approx(1.0)
    assert p["alloy"]["Cr"] <= 0.3 + 1e-12
    x = project_to_bounded_simplex(np.array([2.0, -1.0, 0.5]), np.zeros(3), np.ones(3))
    np.testing.assert_allclose(x, [1.0, 0.0, 0.0], atol=1e-9)


def test_sampling_is_seeded():
    space = _mixed_space()
    assert space.sample(5, seed=7) == space.sample(5, seed=7)
    assert space.sample(5, seed=7) != space.sample(5, seed=8)


def test_structure_candidate_has_substitution_and_strain():
    space = _mos2_space()
    base = space.base_structure
    point = {"dopant": {"element": "W", "fraction": 0.5}, "strain": {"a": 0.02, "b": -0.01}, "temperature": 500.0}
    atoms = space.to_atoms(point, seed=1)
    symbols = atoms.get_chemical_symbols()
    assert symbols.count("W") == 2 and symbols.count("Mo") == 2 and symbols.count("S") == 8
    np.testing.assert_allclose(np.linalg.norm(atoms.cell[0]), 1.02 * np.linalg.norm(base.cell[0]))
    np.testing.assert_allclose(np.linalg.norm(atoms.cell[1]), 0.99 * np.linalg.norm(base.cell[1]))
    np.testing.assert_allclose(atoms.cell[2], base.cell[2])
    np.testing.assert_allclose(atoms.get_scaled_positions(), base.get_scaled_positions(), atol=1e-12)
    assert space.to_atoms(point, seed=1).get_chemical_symbols() == symbols
    # fractions snap to whole sites: 0.3 of 4 Mo sites -> 1 site
    assert space.decode(space.encode({**point, "dopant": {"element": "Nb", "fraction": 0.3}}))[0]["dopant"] == {
        "element": "Nb",
        "fraction": 0.25,
    }


def test_constraints_flag_violations_and_sampling_avoids_them():
    space = _mos2_space(element_constraints=ElementConstraints(max_num_elements=2))
    doped = {"dopant": {"element": "W", "fraction": 0.25}, "strain": {"a": 0.0, "b": 0.0}, "temperature": 400.0}
    assert space.violations(doped) == ["3 elements > max_num_elements 2"]
    pure = {**doped, "dopant": {"element": "W", "fraction": 0.0}}
    assert space.violations(pure) == []
    assert all(p["dopant"]["fraction"] == 0.0 for p in space.sample(10, seed=0))


def test_dict_round_trip_is_json_and_equivalent():
    space = _mos2_space(
        element_constraints=ElementConstraints(allowed=("Mo", "W", "Nb", "S"), forbidden=("Pb",), max_num_elements=3),
        structure_constraints=StructureConstraints(min_atoms_per_cell=2, max_atoms_per_cell=20),
    )
    data = json.loads(json.dumps(space.to_dict()))
    again = ParameterSpace.from_dict(data)
    assert again.to_dict() == space.to_dict()
    pts = space.sample(4, seed=2)
    np.testing.assert_allclose(again.encode(pts), space.encode(pts))
    mixed = _mixed_space()
    assert ParameterSpace.from_dict(json.loads(json.dumps(mixed.to_dict()))).to_dict() == mixed.to_dict()
    with pytest.raises(ValueError, match=r"dimensions\[0\].type"):
        ParameterSpace.from_dict({"dimensions": [{"type": "fuzzy", "name": "x"}]})
    with pytest.raises(ValueError, match="unknown keys"):
        ParameterSpace.from_dict({"dimensions": [], "colour": "blue"})
