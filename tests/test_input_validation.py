"""Specification (property-based, ``hypothesis``): bad input never reaches a computer.

For the campaign (``nanoos.campaign``: config, search space, objective, constraints), DFT labelling
(``nanoos.dft.label``), the potential pipeline (``nanoos.potential.pipeline`` and the YAML of ``aiida-nanoos pipeline
run``), potential training (``nanoos.potential.train``) and model training (``nanoos.model.train``), every generated
invalid input — wrong types, out-of-range numbers, NaN and infinities, unknown keys, empty lists, huge strings, wrong
nesting — is refused by the process's own spec (port validators and ``validate_inputs``, called through
``Process.spec().inputs``, the same call the engine makes before anything is stored or submitted) with a message that
names the offending field, and never with an exception; through the command line: exit code 2, no traceback.

Each generated case starts from a valid input (checked to be accepted, so a refusal is the mutation's doing) and
breaks exactly one field. No pw.x, LAMMPS or daemon is used: the codes are never run.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml
from aiida import orm
from ase.build import bulk
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from aiida_nanoos.workflows.campaign_inputs import plain
from tests.campaign_fixtures import group_iv_space

FAST = settings(
    max_examples=50,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: a failure is reported as generated
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HUGE = "x" * 100_000
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
ELEMENT_FAMILY = "nanoos-validation/Si"
UPF = Path("/usr/share/espresso/pseudo/Si.pbe-nl-rrkjus_psl.1.0.0.UPF")


# ---------------------------------------------------------------------------------------------- bad values
def wrong_types(*, none: bool = True):
    """Values of the wrong JSON type for a scalar setting (and the wrong nesting: lists and mappings)."""
    options = [
        st.text(max_size=8),
        st.just(HUGE),
        st.booleans(),
        st.lists(st.integers(-3, 3), max_size=3),
        st.dictionaries(st.sampled_from(["a", "value", "0"]), st.integers(), max_size=2),
    ]
    return st.one_of(*options, st.none()) if none else st.one_of(*options)


def bad_positive_int(*, none: bool = True):
    return st.one_of(
        st.integers(max_value=0),
        st.floats(allow_nan=True).filter(lambda x: not (math.isfinite(x) and x.is_integer() and x >= 1)),
        NON_FINITE,
        wrong_types(none=none),
    )


def bad_non_negative_int(*, none: bool = True):
    return st.one_of(st.integers(max_value=-1), st.floats(0.1, 1e6).filter(lambda x: not x.is_integer()),
                     NON_FINITE, wrong_types(none=none))  # fmt: skip


def bad_number(low: float | None = None, high: float | None = None, *, none: bool = True, strict: bool = False):
    """Not a finite number in [low, high] (or (low, high) when ``strict``)."""
    out = [NON_FINITE, wrong_types(none=none)]
    if low is not None:
        out.append(st.floats(max_value=low, exclude_max=not strict, allow_nan=False, allow_infinity=False))
        out.append(st.integers(max_value=math.floor(low) - 1))
    if high is not None:
        out.append(st.floats(min_value=high, exclude_min=not strict, allow_nan=False, allow_infinity=False))
    return st.one_of(*out)


def bad_choice(choices):
    return st.one_of(st.text(max_size=12).filter(lambda s: s not in choices), st.just(HUGE), st.integers(),
                     st.lists(st.sampled_from(list(choices)), min_size=1, max_size=2))  # fmt: skip


UNKNOWN_KEY = st.sampled_from(["colour", "batch-size", "Batch_Size", "__class__", "x" * 300, " "])


def draw_one(data, table: dict):
    """One entry of ``table`` (field -> strategy of bad values) and one bad value for it."""
    field = data.draw(st.sampled_from(sorted(table)), label="field")
    return field, data.draw(table[field], label="value")


def mutate(base: dict, path: tuple[str, ...], value) -> dict:
    """A deep copy of ``base`` with ``path`` set to ``value`` (intermediate mappings created)."""
    import copy

    out = copy.deepcopy(base)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def _fresh(inputs):
    """Nested plain dicts (the nodes shared): ``pre_process`` fills defaults into the mappings it is given."""
    from collections.abc import Mapping

    if isinstance(inputs, Mapping) and not isinstance(inputs, orm.Node):
        return {key: _fresh(value) for key, value in inputs.items()}
    return inputs


def refusal(process_class, inputs) -> str:
    """The message with which the process's spec refuses ``inputs`` (fails when it accepts them or raises)."""
    spec = process_class.spec()
    try:
        error = spec.inputs.validate(spec.inputs.pre_process(_fresh(inputs)))
    except Exception as exc:  # noqa: BLE001 (the property under test: no exception, a refusal)
        pytest.fail(f"validation raised {type(exc).__name__}: {exc}  (a traceback at submission)")
    assert error is not None, f"accepted: {inputs}"
    return str(error)


def accepted(process_class, inputs) -> None:
    spec = process_class.spec()
    error = spec.inputs.validate(spec.inputs.pre_process(_fresh(inputs)))
    assert error is None, str(error)


def assert_names(message: str, *fields: str) -> None:
    """The message names one of ``fields`` (a key, or a dotted path)."""
    assert any(field in message for field in fields), f"{fields} not named in: {message[:400]}"


# ---------------------------------------------------------------------------------------------- resources
@pytest.fixture(scope="module")
def codes(aiida_profile, tmp_path_factory):
    """A computer and codes that are never run, and a one-element (Si) pseudo family with cutoffs."""
    from aiida.common.exceptions import NotExistent
    from aiida.plugins import DataFactory, GroupFactory

    try:
        computer = orm.load_computer("nanoos-validation")
    except NotExistent:
        computer = orm.Computer(
            label="nanoos-validation",
            hostname="localhost",
            transport_type="core.local",
            scheduler_type="core.direct",
            workdir=str(tmp_path_factory.mktemp("work")),
        ).store()
        computer.configure()
    made = {}
    for role, plugin in (
        ("pw", "quantumespresso.pw"),
        ("lmp", "nanoos.md"),
        ("train", "nanoos.potential.train"),
        ("train-model", "nanoos.model.train"),
    ):
        label = f"{role}-never-run"
        try:
            made[role] = orm.load_code(f"{label}@nanoos-validation")
        except NotExistent:
            made[role] = orm.InstalledCode(
                computer=computer, filepath_executable="/bin/false", label=label, default_calc_job_plugin=plugin
            ).store()
    CutoffsFamily = GroupFactory("pseudo.family.cutoffs")
    try:
        CutoffsFamily.collection.get(label=ELEMENT_FAMILY)
    except NotExistent:
        if not UPF.is_file():
            pytest.skip(f"{UPF} not found (Debian package quantum-espresso-data)")
        folder = tmp_path_factory.mktemp("pseudo")
        shutil.copy(UPF, folder / "Si.upf")
        family = CutoffsFamily.create_from_folder(folder, ELEMENT_FAMILY, pseudo_type=DataFactory("pseudo.upf"))
        family.set_cutoffs({"Si": {"cutoff_wfc": 30.0, "cutoff_rho": 240.0}}, stringency="normal", unit="Ry")
    return made


# ============================================================================================== (a) campaign
def campaign_class():
    from aiida_nanoos.workflows.campaign import CampaignWorkChain

    return CampaignWorkChain


BASE_CONFIG = {"algorithm": "random", "batch_size": 2, "max_iterations": 2, "seed": 1}


def campaign_inputs(config=None, objective="maximize_bandgap", space=None, constraints=None) -> dict:
    inputs = {
        "search_space": orm.Dict(space if space is not None else group_iv_space()),
        "objective": orm.Str(objective) if isinstance(objective, str) else orm.Dict(objective),
        "config": orm.Dict(BASE_CONFIG if config is None else config),
        "evaluator": orm.Str("analytic"),
    }
    if constraints is not None:
        inputs["constraints"] = orm.Dict(constraints)
    return inputs


def test_the_valid_campaign_baselines_are_accepted(aiida_profile):
    accepted(campaign_class(), campaign_inputs())
    accepted(campaign_class(), campaign_inputs(config={**BASE_CONFIG, "algorithm": "bayesian_optimization"}))
    accepted(campaign_class(), campaign_inputs(constraints={"allowed_elements": ["C", "Si", "Ge"]}))


CONFIG_FIELDS = {
    ("batch_size",): bad_positive_int(),
    ("budget",): bad_positive_int(none=False),
    ("max_iterations",): bad_positive_int(),
    ("patience",): bad_positive_int(none=False),
    ("top_n",): bad_positive_int(),
    ("seed",): bad_non_negative_int(),
    ("candidate_pool",): bad_non_negative_int(),
    ("min_improvement",): bad_number(low=0.0, strict=True),
    ("target",): st.one_of(NON_FINITE, wrong_types(none=False)),
    ("algorithm",): bad_choice(("random", "genetic", "bayesian_optimization", "active_learning", "external")),
    ("evaluation_method",): bad_choice(("dft", "ml_only", "ml_then_dft")),
    ("reference_point",): st.one_of(
        st.just([]),
        st.lists(NON_FINITE, min_size=1, max_size=1),
        st.lists(st.floats(-1, 1), min_size=2, max_size=3),
        st.text(max_size=5),
        st.integers(),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ),  # fmt: skip
    ("bo",): st.one_of(st.lists(st.integers(), max_size=2), st.text(max_size=5), st.integers()),
    ("bo", "acquisition"): bad_choice(("UCB", "LCB", "EI", "PI", "RANGE", "ucb", "lcb", "ei", "pi", "range")),
    ("bo", "output_transform"): bad_choice(("auto", "power", "log", "rank", "none")),
    ("genetic",): st.one_of(st.lists(st.integers(), max_size=2), st.text(max_size=5), st.integers()),
    ("genetic", "representation"): bad_choice(("auto", "parameters", "structure")),
    ("genetic", "population_size"): bad_positive_int(none=False),
    ("genetic", "elite_fraction"): bad_number(0.0, 1.0, none=False),
    ("genetic", "mutation_probability"): bad_number(0.0, 1.0, none=False),
    ("genetic", "crossover_probability"): bad_number(0.0, 1.0, none=False),
    ("external",): st.one_of(st.lists(st.integers(), max_size=2), st.text(max_size=5), st.integers()),
}


@FAST
@given(data=st.data())
def test_campaign_config_with_one_bad_field_is_refused_naming_it(aiida_profile, data):
    path, value = draw_one(data, CONFIG_FIELDS)
    base = dict(BASE_CONFIG)
    if path[0] == "bo":
        base["algorithm"] = "bayesian_optimization"
    if path[0] == "genetic":
        base["algorithm"] = "genetic"
    message = refusal(campaign_class(), campaign_inputs(config=mutate(base, path, value)))
    assert_names(message, "config." + ".".join(path), f"config.{path[0]}")


@pytest.mark.parametrize(
    ("key", "value"),
    [("beta", math.nan), ("xi", math.nan), ("kernel", "cubic"), ("n_raw_samples", 0), ("n_raw_samples", 1.5),
     ("n_raw_samples", math.inf), ("n_restarts", -1)],
)  # fmt: skip
def test_bo_settings_with_a_bad_value_are_refused_naming_it(aiida_profile, key, value):
    config = {**BASE_CONFIG, "algorithm": "bayesian_optimization", "bo": {key: value}}
    message = refusal(campaign_class(), campaign_inputs(config=config))
    assert_names(message, f"config.bo.{key}", f"config.bo: {key}")


@FAST
@given(key=UNKNOWN_KEY, where=st.sampled_from([(), ("bo",), ("genetic",), ("external",)]))
def test_campaign_config_with_an_unknown_key_is_refused_naming_it(aiida_profile, key, where):
    config = mutate(BASE_CONFIG, (*where, key), 1) if where else {**BASE_CONFIG, key: 1}
    message = refusal(campaign_class(), campaign_inputs(config=config))
    assert_names(message, "unknown key")
    assert_names(message, "config")


EXTERNAL_FIELDS = {
    "url": st.one_of(st.text(max_size=20).filter(lambda s: not s.startswith("http")), st.just("file:///etc/passwd"),
                     st.just("ftp://x/y"), st.just("http://"), st.just("javascript:alert(1)"), wrong_types()),
    "api_key_env": st.one_of(st.just(""), st.just("   "), st.integers(), st.lists(st.text(max_size=3), max_size=2)),
    "timeout": bad_number(low=0.0, high=3600.0, strict=True),
    "context_window": bad_positive_int(none=False),
    "max_response_bytes": bad_positive_int(none=False),
}  # fmt: skip


@FAST
@given(data=st.data())
def test_external_proposer_settings_with_one_bad_field_are_refused_naming_it(aiida_profile, data):
    field, value = draw_one(data, EXTERNAL_FIELDS)
    external = {"url": "http://127.0.0.1:9/propose", "api_key_env": "KEY", field: value}
    message = refusal(campaign_class(), campaign_inputs(config={**BASE_CONFIG, "algorithm": "external",
                                                               "external": external}))  # fmt: skip
    assert_names(message, f"config.external.{field}")


PROPERTY_MODEL_FIELDS = {
    "model": st.one_of(st.just(""), st.integers(), st.lists(st.text(max_size=3), max_size=2)),
    "strategy": bad_choice(("uncertainty", "greedy_uncertainty", "expected_improvement", "diverse_uncertainty")),
    "exploration_weight": bad_number(low=0.0, none=False),
    "uncertainty_threshold": bad_number(low=0.0, none=False),
    "dft_fraction": bad_number(0.0, 1.0, none=False),
    "dft_trigger": bad_choice(("uncertainty", "fraction", "value_per_cost")),
    "min_labels": st.one_of(st.integers(-5, 3), wrong_types()),
    "pool_size": bad_positive_int(),
    "n_samples": st.one_of(st.integers(-5, 1), wrong_types()),
    "uncertainty_method": bad_choice(("ensemble", "mc_dropout")).filter(lambda v: v is not None),
    "training": st.one_of(st.lists(st.integers(), max_size=2), st.text(min_size=1, max_size=5), st.integers(1)),
}


@FAST
@given(data=st.data())
def test_property_model_settings_with_one_bad_field_are_refused_naming_it(aiida_profile, data):
    field, value = draw_one(data, PROPERTY_MODEL_FIELDS)
    settings_ = {"model": "cgcnn_bandgap", "pool_size": 16, field: value}
    config = {**BASE_CONFIG, "algorithm": "active_learning", "property_model": settings_}
    message = refusal(campaign_class(), campaign_inputs(config=config))
    assert_names(message, f"config.property_model.{field}", "config.property_model")


def dimension_mutations():
    """(index of the dimension, key, bad value) for the group-IV space: substitution, substitution, strain."""
    fraction = st.one_of(
        st.lists(st.floats(1.01, 5), min_size=2, max_size=2),
        st.tuples(st.just(0.9), st.just(0.1)).map(list),
        st.lists(NON_FINITE, min_size=2, max_size=2),
        st.lists(st.floats(0, 1), max_size=1),
        st.lists(st.floats(0, 1), min_size=3, max_size=4),
        st.text(max_size=3), st.booleans(), st.just({"low": 0, "high": 1}),
    )  # fmt: skip
    dopants = st.one_of(
        st.just([]), st.lists(st.sampled_from(["Xx", "Unobtainium", "si", "", HUGE]), min_size=1, max_size=2),
        st.just(["C", "C"]), st.sampled_from(["", "Xx", "si"]), st.integers(),
    )  # fmt: skip
    ranges = st.one_of(
        st.fixed_dictionaries({"iso": st.lists(st.floats(0.01, 0.5), min_size=2, max_size=2).map(sorted).map(
            lambda r: [r[1] + 0.01, r[0]])}),  # inverted
        st.fixed_dictionaries({"iso": st.lists(NON_FINITE, min_size=2, max_size=2)}),
        st.fixed_dictionaries({"iso": st.just([-5.0, 5.0])}),  # a cell squeezed to nothing
        st.just({}), st.just({"iso": []}), st.just({"shear": [0, 0.1]}),
        wrong_types(none=False),
    )  # fmt: skip
    return st.one_of(
        st.tuples(st.just(0), st.just("fraction"), fraction),
        st.tuples(st.just(0), st.just("dopants"), dopants),
        st.tuples(st.just(0), st.just("host"), st.one_of(st.sampled_from(["Pb", "Xx", ""]), wrong_types())),
        st.tuples(
            st.just(0),
            st.just("type"),
            bad_choice(("substitution", "strain", "continuous", "integer", "categorical", "composition")),
        ),  # fmt: skip
        st.tuples(
            st.just(1),
            st.just("name"),
            st.one_of(st.just("si_sites"), st.just(""), wrong_types().filter(lambda v: not _a_dimension_name(v))),
        ),
        st.tuples(st.just(2), st.just("ranges"), ranges),
        st.tuples(st.just(2), st.just("isotropic"), st.one_of(st.text(max_size=3), st.integers(2))),
    )


@FAST
@given(mutation=dimension_mutations())
def test_search_space_with_one_bad_dimension_field_is_refused_naming_it(aiida_profile, mutation):
    index, key, value = mutation
    space = group_iv_space()
    space["dimensions"][index][key] = value
    message = refusal(campaign_class(), campaign_inputs(space=space))
    assert_names(message, "search_space")
    name = group_iv_space()["dimensions"][index]["name"]
    assert_names(message, key, name, "dimension")


SPACE_LEVEL = {
    "dimensions": st.one_of(st.just([]), st.text(max_size=5), st.integers(), st.just({"name": "x"}),
                            st.lists(st.one_of(st.integers(), st.text(max_size=3)), min_size=1, max_size=2)),
    "base_structure": st.one_of(st.text(max_size=5), st.integers(), st.just({"symbols": ["Si"]}),
                                st.just({"symbols": [], "cell": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "positions": []}),
                                st.just({"symbols": ["Si"], "cell": [[math.nan] * 3] * 3, "positions": [[0, 0, 0]],
                                         "pbc": [True] * 3})),
    "element_constraints": st.one_of(
        st.fixed_dictionaries({"allowed_elements": st.lists(st.sampled_from(["Xx", "", "si"]), min_size=1,
                                                            max_size=2)}),
        st.fixed_dictionaries({"forbidden_elements": st.one_of(st.text(min_size=1, max_size=3), st.integers())}),
        st.fixed_dictionaries({"max_num_elements": bad_positive_int(none=False)}),
        st.fixed_dictionaries({"shiny": st.integers()}), wrong_types(none=False).filter(lambda v: v != {}),
    ),
    "structure_constraints": st.one_of(
        st.fixed_dictionaries({"min_atoms_per_cell": st.integers(-5, 0)}),
        st.fixed_dictionaries({"max_atoms_per_cell": st.one_of(st.integers(-5, 0), NON_FINITE, st.text(max_size=3))}),
        st.just({"min_atoms_per_cell": 10, "max_atoms_per_cell": 2}),
        st.fixed_dictionaries({"max_volume": st.integers()}), wrong_types(none=False).filter(lambda v: v != {}),
    ),
    "unknown": st.integers(),
}  # fmt: skip


@FAST
@given(data=st.data())
def test_search_space_with_a_bad_top_level_entry_is_refused_naming_it(aiida_profile, data):
    key, value = draw_one(data, SPACE_LEVEL)
    space = {**group_iv_space(), key: value}
    message = refusal(campaign_class(), campaign_inputs(space=space))
    assert_names(message, "search_space")
    assert_names(message, key, *(value if isinstance(value, dict) else {}), "dimension", "base_structure")


# the formulas a user can type: injections, unknown names, overflow, nesting, length
BAD_FORMULAS = st.one_of(
    st.sampled_from([
        "bandgap.__class__", "__import__('os').system('id')", "open('/etc/passwd').read()", "bandgap ** 10**10",
        "9**9**9", "lambda: 1", "[x for x in (1,)]", "bandgap if 1 else 0", "bandgap; 1", "import os", "",
        "unobtainium * 2", "(" * 300 + "bandgap" + ")" * 300, "-" * 999 + "bandgap", "bandgap / 0", "1e999",
        "max(bandgap)", "abs(bandgap, 1)", "bandgap >= 1", "exec('1')", "globals()", "bandgap.real", "'a' + 'b'",
    ]),
    st.just("bandgap + " * 20_000 + "bandgap"),
    st.text(alphabet="()[]{}*+-/.,'\"_ abcdefghijklmnopqrstuvwxyz0123456789", max_size=40).filter(
        lambda s: _not_a_formula(s)),
    wrong_types(),
)  # fmt: skip


def _a_dimension_name(value) -> bool:
    """Any text of 1 to 100 characters (not only blanks) names a dimension."""
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 100


def _not_a_constraint(text: str) -> bool:
    """Bad as an objective is not always bad as a constraint ('bandgap >= 1' is a good one)."""
    from aiida_nanoos.design.objectives import Constraint

    try:
        Constraint.from_spec(text)
    except ValueError:
        return True
    return False


def _not_a_formula(text: str) -> bool:
    from aiida_nanoos.design.objectives import parse_expression

    try:
        parse_expression(text)
    except ValueError:
        return True
    return False


BAD_CONSTRAINTS = BAD_FORMULAS.filter(lambda f: isinstance(f, str) and bool(f) and _not_a_constraint(f))


def objective_mutations():
    return st.one_of(
        st.builds(lambda f: {"objective": "custom", "formula": f}, BAD_FORMULAS),
        st.builds(lambda d: {"objective": "custom", "formula": "bandgap", "direction": d},
                  bad_choice(("maximize", "minimize"))),
        st.builds(lambda r: {"objective": "target_range", "property": "bandgap", "range": r}, st.one_of(
            st.lists(st.floats(0, 5), min_size=2, max_size=2).map(sorted).map(lambda r: [r[1] + 0.1, r[0]]),
            st.lists(NON_FINITE, min_size=2, max_size=2), st.lists(st.floats(0, 1), max_size=1),
            st.lists(st.floats(0, 1), min_size=3, max_size=3), wrong_types(),
            st.lists(st.text(min_size=1, max_size=2), min_size=2, max_size=2),
        )),
        st.builds(lambda p: {"objective": "target_range", "property": p, "range": [1, 2]},
                  st.one_of(st.just("unobtainium"), st.just(HUGE), wrong_types())),
        st.builds(lambda c: {"objective": "maximize_bandgap", "constraints": c}, st.one_of(
            st.lists(BAD_CONSTRAINTS, min_size=1, max_size=1),
            st.just([{"property": "bandgap", "min": 2, "max": 1}]),
            st.just([{"property": "bandgap"}]),
            st.builds(lambda v: [{"property": "bandgap", "min": v}], st.one_of(NON_FINITE, st.text(max_size=3))),
            st.just([{"property": "bandgap", "min": 1, "colour": "red"}]),
            st.just([{"property": "unobtainium", "min": 1}]),
            st.just("bandgap >= 1"), st.integers(), st.just({"property": "bandgap", "min": 1}),
        )),
        st.builds(lambda n: {"objective": n}, bad_choice(("maximize_bandgap", "minimize_formation_energy",
                                                          "maximize_stability", "custom", "target_range"))),
        st.builds(lambda o: {"objectives": o}, st.one_of(st.just([]), st.just("maximize_bandgap"),
                                                         st.lists(st.just("maximize_tc"), min_size=1, max_size=2))),
        st.just({"objectives": ["maximize_bandgap"], "colour": "red"}),
        st.builds(lambda n: n, st.text(max_size=20).filter(lambda s: s not in ("maximize_bandgap",
                  "minimize_formation_energy", "maximize_stability"))),
    )  # fmt: skip


@FAST
@given(objective=objective_mutations())
def test_bad_objectives_are_refused_naming_the_objective(aiida_profile, objective):
    message = refusal(campaign_class(), campaign_inputs(objective=objective))
    assert_names(message, "objective")


CONSTRAINTS = st.one_of(
    st.fixed_dictionaries({"allowed_elements": st.lists(st.sampled_from(["Xx", "", "Unobtainium"]), min_size=1,
                                                        max_size=2)}),
    st.fixed_dictionaries({"forbidden_elements": st.one_of(st.integers(), st.just([["Si"]]))}),
    st.fixed_dictionaries({"max_num_elements": bad_positive_int(none=False)}),
    st.fixed_dictionaries({"min_atoms_per_cell": st.one_of(st.integers(-5, 0), NON_FINITE)}),
    st.fixed_dictionaries({"max_atoms_per_cell": st.one_of(st.integers(-5, 0), st.text(max_size=3))}),
    st.fixed_dictionaries({"properties": st.one_of(st.just("bandgap >= 1"), st.integers(),
                                                   st.lists(BAD_CONSTRAINTS,
                                                            min_size=1, max_size=1))}),
    st.builds(lambda k: {k: 1}, UNKNOWN_KEY),
)  # fmt: skip


@FAST
@given(constraints=CONSTRAINTS)
def test_bad_campaign_constraints_are_refused_naming_the_field(aiida_profile, constraints):
    message = refusal(campaign_class(), campaign_inputs(constraints=constraints))
    assert_names(message, *constraints, "constraints", "element")


def test_a_finite_space_smaller_than_the_batch_and_an_objective_the_evaluator_cannot_compute(aiida_profile):
    from aiida_nanoos.design.spaces import atoms_to_dict
    from tests.campaign_fixtures import sige_cell

    finite = {
        "base_structure": atoms_to_dict(sige_cell()),
        "dimensions": [{"type": "substitution", "name": "s", "host": "Si", "dopants": ["Ge"], "fraction": [0, 1]}],
    }
    message = refusal(campaign_class(), campaign_inputs(space=finite, config={**BASE_CONFIG, "batch_size": 6}))
    assert_names(message, "config.batch_size")
    message = refusal(campaign_class(), campaign_inputs(objective={"objective": "custom", "formula": "bulk_modulus"}))
    assert_names(message, "bulk_modulus")


# ============================================================================================== (b) label
def label_class():
    from aiida_nanoos.workflows.label import LabelWorkChain

    return LabelWorkChain


SAMPLING = {"count": 2, "supercell": [1, 1, 1], "strain_max": 0.02, "rattle_std": 0.05, "seed": 0}


def label_inputs(codes, **changes) -> dict:
    builder = label_class().get_builder_from_protocol(
        codes["pw"],
        structure=orm.StructureData(ase=bulk("Si", "diamond", a=5.43)),
        sampling=SAMPLING,
        protocol="fast",
        overrides={"pseudo_family": ELEMENT_FAMILY},
    )
    inputs = dict(plain(builder))
    inputs.update(changes)
    return inputs


def test_the_valid_label_baseline_is_accepted(codes):
    accepted(label_class(), label_inputs(codes))


SAMPLING_FIELDS = {
    "count": bad_positive_int(),
    "supercell": st.one_of(st.lists(st.integers(-2, 0), min_size=3, max_size=3), st.lists(st.integers(1, 3),
                           max_size=2), st.lists(st.integers(1, 3), min_size=4, max_size=5),
                           st.lists(st.floats(1.1, 2.9), min_size=3, max_size=3), st.integers(max_value=0),
                           st.lists(NON_FINITE, min_size=3, max_size=3), st.text(max_size=3), st.just(HUGE)),
    "strain_max": bad_number(0.0, 0.3, strict=False),
    "rattle_std": bad_number(0.0, 1.0, strict=False),
    "seed": bad_non_negative_int(),
    "include_parent": st.one_of(st.integers(), st.text(max_size=3), st.lists(st.booleans(), max_size=2)),
}  # fmt: skip


@FAST
@given(data=st.data())
def test_label_sampling_with_one_bad_field_is_refused_naming_it(codes, data):
    field, value = draw_one(data, SAMPLING_FIELDS)
    if field in ("strain_max", "rattle_std") and isinstance(value, float) and math.isfinite(value) and value == 0:
        value = -0.1
    message = refusal(label_class(), label_inputs(codes, sampling=orm.Dict({**SAMPLING, field: value})))
    assert_names(message, f"sampling.{field}")


@FAST
@given(data=st.data())
def test_label_top_level_bad_values_are_refused_naming_the_port(codes, data):
    port, value = data.draw(st.one_of(
        st.tuples(st.just("max_concurrent"), st.integers(max_value=0).map(orm.Int)),
        st.tuples(st.just("max_failure_fraction"), st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0001),
                                                             NON_FINITE).map(orm.Float)),
        st.tuples(st.just("pseudo_family"), st.one_of(st.just("no/such/family"), st.just(HUGE)).map(orm.Str)),
        st.tuples(st.just("sampling"), st.builds(lambda k: orm.Dict({**SAMPLING, k: 1}), UNKNOWN_KEY)),
        st.tuples(st.just("structure"), st.sampled_from(["Ge", "C", "Sc"]).map(
            lambda e: orm.StructureData(ase=bulk(e, "diamond", a=5.6) if e != "Sc" else bulk("Sc")))),
    ), label="port")  # fmt: skip
    message = refusal(label_class(), label_inputs(codes, **{port: value}))
    assert_names(message, port, "sampling", "no pseudopotential", "pseudo family")


def test_the_label_schema_states_the_bounds_of_the_label_work_chain(codes):
    """max_concurrent and max_failure_fraction of the label file, probed at and beyond the limits the schema states:
    the work chain's spec agrees and names the port."""
    from aiida_nanoos.schema import json_schema, schema_errors
    from tests.core.test_schema import probes

    schema = json_schema("label")["properties"]
    for port, node in (("max_concurrent", orm.Int), ("max_failure_fraction", orm.Float)):
        for value, ok in probes(schema[port]):
            assert (schema_errors("label", {port: value}) == []) is ok, (port, value)
            if isinstance(value, float) and node is orm.Int:
                continue  # a fraction cannot reach the Int port; the schema's integer type refuses it above
            if ok:
                accepted(label_class(), label_inputs(codes, **{port: node(value)}))
            else:
                assert_names(refusal(label_class(), label_inputs(codes, **{port: node(value)})), port)


def test_label_with_neither_or_both_sources_is_refused(codes):
    inputs = label_inputs(codes)
    structure = inputs.pop("structure")
    message = refusal(label_class(), {k: v for k, v in inputs.items() if k != "sampling"})
    assert_names(message, "structure", "configurations")
    message = refusal(label_class(), {**inputs, "structure": structure, "configurations": {"c0": structure}})
    assert_names(message, "structure", "configurations")


# ============================================================================================== (c) pipeline
def pipeline_class():
    from aiida_nanoos.workflows.pipeline import PotentialPipelineWorkChain

    return PotentialPipelineWorkChain


def pipeline_inputs(codes, overrides=None) -> dict:
    builder = pipeline_class().get_builder_from_protocol(
        codes["pw"],
        codes["lmp"],
        orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True)),
        protocol="fast",
        overrides={"label": {"overrides": {"pseudo_family": ELEMENT_FAMILY}}, **(overrides or {})},
        train_code=codes["train"],
    )
    return dict(plain(builder))


def test_the_valid_pipeline_baseline_is_accepted(codes):
    accepted(pipeline_class(), pipeline_inputs(codes))


@FAST
@given(data=st.data())
def test_pipeline_inputs_with_one_bad_value_are_refused_naming_it(codes, data):
    port, value, names = data.draw(st.one_of(
        st.tuples(st.just("validation_fraction"),
                  st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), NON_FINITE).map(orm.Float),
                  st.just(("validation_fraction",))),
        st.tuples(st.just("md_supercell"), st.one_of(
            st.lists(st.integers(-2, 0), min_size=3, max_size=3), st.lists(st.integers(1, 3), max_size=2),
            st.lists(st.floats(1.1, 2.9), min_size=3, max_size=3), st.lists(st.text(max_size=2), min_size=3,
                                                                          max_size=3),
        ).map(orm.List), st.just(("md_supercell",))),
        st.tuples(st.just("validation_criteria"), st.one_of(
            st.fixed_dictionaries({"energy_rmse": st.one_of(st.floats(max_value=0), st.just(math.nan),
                                                            st.text(max_size=3))}),
            st.fixed_dictionaries({"force_rmse": st.one_of(st.integers(max_value=0), st.booleans())}),
            st.builds(lambda k: {k: 0.1}, UNKNOWN_KEY),
        ).map(orm.Dict), st.just(("criteria", "validation_criteria"))),
        st.tuples(st.just("md_structure"), st.just(orm.StructureData(ase=bulk("Ge", "diamond", a=5.6))),
                  st.just(("md_structure",))),
    ), label="port")  # fmt: skip
    inputs = pipeline_inputs(codes)
    if port == "md_structure":
        inputs.pop("md_supercell")
    inputs[port] = value
    assert_names(refusal(pipeline_class(), inputs), *names)


# the YAML of `aiida-nanoos pipeline run`: one bad entry, through the command line
def pipeline_yaml(codes) -> dict:
    return {
        "structure": {"bulk": "Si", "crystalstructure": "diamond", "a": 5.43, "cubic": True},
        "protocol": "fast",
        "electronic_type": "insulator",
        "codes": {role: f"{codes[role].label}@nanoos-validation" for role in ("pw", "lmp", "train")},
        "overrides": {"label": {"overrides": {"pseudo_family": ELEMENT_FAMILY}}},
    }


PIPELINE_YAML = {
    ("protocol",): (bad_choice(("fast", "balanced", "precise")), ("protocol",)),
    ("electronic_type",): (bad_choice(("metal", "insulator", "METAL", "INSULATOR", "Metal", "Insulator")),
                           ("electronic_type",)),
    ("structure",): (st.one_of(st.just({"bulk": "Xx"}), st.just({"bulk": "Si", "crystalstructure": "nonsense"}),
                               st.just({"bulk": "Si", "colour": "red"}), st.just("no-such-file.cif"),
                               st.lists(st.integers(), max_size=2), st.just({"bulk": "Si", "a": -5.43}),
                               st.just({"bulk": "Si", "repeat": [0, 1, 1]})), ("structure",)),
    ("codes",): (st.one_of(st.just({"pw": "no-such-code@nowhere"}), st.just({"gpu": "x"}), st.just({"lmp": HUGE}),
                           st.text(min_size=1, max_size=4), st.lists(st.text(max_size=3), min_size=1, max_size=2)),
                 ("codes",)),
    ("overrides",): (st.one_of(st.text(min_size=1, max_size=4), st.lists(st.integers(), min_size=1, max_size=2),
                               st.integers(1)), ("overrides",)),
    ("overrides", "validation_fraction"): (st.one_of(NON_FINITE, st.floats(max_value=0.0), st.floats(min_value=1.0)),
                                           ("validation_fraction",)),
    ("overrides", "label", "sampling", "count"): (bad_positive_int(none=False), ("sampling.count", "count")),
    ("overrides", "label", "sampling", "rattle_std"): (bad_number(0.0, 1.0).filter(lambda v: v != 0.0),
                                                       ("sampling.rattle_std", "rattle_std")),
    ("overrides", "train", "config", "snap", "twojmax"): (st.one_of(st.integers(-4, -1), st.integers(13, 99),
                                                                    st.text(max_size=3), NON_FINITE),
                                                          ("twojmax",)),
    ("overrides", "validation_criteria", "force_rmse"): (bad_number(low=0.0, strict=True), ("force_rmse",)),
    ("overrides", "md", "temperature"): (st.one_of(NON_FINITE, st.floats(max_value=0.0)), ("temperature", ".temp")),
    ("overrides", "md", "steps"): (st.integers(max_value=0), ("steps",)),
    ("overrides", "md", "timestep_fs"): (st.one_of(st.just(math.nan), st.floats(max_value=0.0)), ("timestep",)),
    ("overrides", "md", "atoms"): (st.integers(max_value=0), ("atoms",)),
    ("unknown",): (st.integers(), ("unknown",)),
}  # fmt: skip


def run_cli(args: list[str]):
    from click.testing import CliRunner

    from aiida_nanoos.cli import cli

    return CliRunner().invoke(cli, args)


def assert_usage_error(result, *fields: str) -> None:
    """Exit code 2 (click's usage error), the field named, no traceback and no exception escaping the command."""
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output[-600:]} {result.exception!r}"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_names(result.output, *fields)


def processes() -> int:
    return orm.QueryBuilder().append(orm.ProcessNode).count()


def test_the_valid_pipeline_yaml_reaches_the_launch_only_through_a_valid_builder(codes, aiida_profile, tmp_path):
    from aiida_nanoos.cli.pipeline import builder_from_config

    accepted(pipeline_class(), dict(plain(builder_from_config(pipeline_yaml(codes), tmp_path))))


@FAST
@given(data=st.data())
def test_pipeline_yaml_with_one_bad_entry_is_a_usage_error_naming_it(codes, aiida_profile, tmp_path, data):
    path = data.draw(st.sampled_from(sorted(PIPELINE_YAML)), label="entry")
    strategy, fields = PIPELINE_YAML[path]
    value = data.draw(strategy, label="value")
    config = mutate(pipeline_yaml(codes), path, value)
    if path == ("codes",) and isinstance(value, dict):
        config["codes"] = {**pipeline_yaml(codes)["codes"], **value}
    file = tmp_path / "pipeline.yaml"
    file.write_text(yaml.safe_dump(config))
    before = processes()
    assert_usage_error(run_cli(["-p", aiida_profile.name, "pipeline", "run", str(file)]), *fields)
    assert processes() == before  # nothing ran, nothing was stored as a process


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("overrides", "validation_fraction"), "half", "validation_fraction"),
        (("overrides", "md", "temperature"), True, "temperature"),
        (("overrides", "md", "temperature"), [300], "temperature"),
        (("overrides", "md", "steps"), -math.inf, "steps"),
        (("overrides", "md", "steps"), math.nan, "steps"),
        (("overrides", "md", "steps"), True, "steps"),
        (("overrides", "md", "timestep_fs"), {"value": 1}, "timestep"),
        (("overrides", "md", "atoms"), "many", "atoms"),
        (("overrides", "md", "atoms"), True, "atoms"),
    ],
)
def test_pipeline_yaml_override_of_a_wrong_type_is_a_usage_error(codes, aiida_profile, tmp_path, path, value, field):
    file = tmp_path / "pipeline.yaml"
    file.write_text(yaml.safe_dump(mutate(pipeline_yaml(codes), path, value)))
    before = processes()
    assert_usage_error(run_cli(["-p", aiida_profile.name, "pipeline", "run", str(file)]), field)
    assert processes() == before  # refused before pw.x or anything else ran


@FAST
@given(text=st.one_of(st.just("[1, 2"), st.just("a: [b"), st.just("- 1\n- 2"), st.just("42"), st.just("{}"),
                      st.just("!!python/object/apply:os.system ['id']"), st.just("a: b\n\tc: d")))  # fmt: skip
def test_pipeline_yaml_that_is_not_a_mapping_of_settings_is_a_usage_error(aiida_profile, tmp_path, text):
    file = tmp_path / "pipeline.yaml"
    file.write_text(text)
    result = run_cli(["-p", aiida_profile.name, "pipeline", "run", str(file)])
    assert_usage_error(result, "pipeline.yaml", "structure")


# ============================================================================================== (d) training
def training_set():
    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_nanoos.data.training_set import TrainingSetData

    frames = []
    for i in range(4):
        atoms = bulk("Si", "diamond", a=5.43 + 0.01 * i, cubic=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-100.0 - i, forces=np.zeros((8, 3)), stress=np.zeros(6))
        frames.append(atoms)
    return TrainingSetData(frames)


def potential_class():
    from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation

    return PotentialTrainingCalculation


@pytest.fixture(scope="module")
def si_frames(aiida_profile):
    return training_set()


TRAIN_BASE = {"descriptor_type": "SNAP", "snap": {"twojmax": 4}, "weights": {"energy": 1.0, "force": 1.0}}
TRAIN_FIELDS = {
    ("descriptor_type",): bad_choice(("SNAP", "qSNAP", "MACE")),
    ("name",): st.one_of(st.just(""), st.just("   "), st.integers(), st.lists(st.text(max_size=2), max_size=2)),
    ("version",): bad_positive_int(none=False),
    ("elements",): st.one_of(st.just([]), st.just(["Xx"]), st.just(["Si", "Si"]), st.just("Si"), st.integers()),
    ("snap",): st.one_of(st.lists(st.integers(), min_size=1, max_size=2), st.text(min_size=1, max_size=3)),
    ("snap", "twojmax"): st.one_of(st.integers(-4, -1), st.integers(13, 10**6), st.floats(0.1, 9.9).filter(
        lambda x: not x.is_integer()), NON_FINITE, wrong_types(none=False)),
    ("snap", "rcutfac"): bad_number(low=0.0, strict=True, none=False),
    ("snap", "rfac0"): bad_number(low=0.0, high=1.0, strict=True, none=False).filter(lambda v: v != 1.0),
    ("snap", "radelem"): st.one_of(st.just(["a"]), st.integers()),
    ("snap", "wj"): st.one_of(st.just([None]), st.text(min_size=1, max_size=2)),
    ("snap", "quadraticflag"): st.one_of(st.integers(2, 9), st.text(min_size=1, max_size=3), NON_FINITE),
    ("weights",): st.one_of(st.lists(st.integers(), min_size=1, max_size=2), st.text(min_size=1, max_size=3)),
    ("weights", "energy"): bad_number(low=0.0, none=False),
    ("weights", "force"): bad_number(low=0.0, none=False),
    ("weights", "groups"): st.one_of(st.just({"md": [1, 1]}), st.just({"md": [-1, 1, 1]})),
    ("solver",): bad_choice(("svd", "ridge")),
    ("ridge_alpha",): bad_number(low=0.0, none=False),
    ("reference",): st.one_of(st.just({"type": "lj"}), st.just({"type": "zbl", "inner": 5.0, "outer": 4.0}),
                              st.just({"type": "zbl", "inner": math.nan}), st.just({"pair_style": 3}),
                              st.text(min_size=1, max_size=3), st.just({"type": "zbl", "colour": 1})),
    ("energy_shift",): st.one_of(st.just({"Xx": 1.0}), st.just({"Si": "a"}), st.just({"Si": math.nan}),
                                 st.lists(st.integers(), min_size=1, max_size=2)),
    ("committee",): st.one_of(st.just({"size": 1}), st.just({"method": "magic"}), st.just({"fraction": 0.0}),
                              st.just({"fraction": 2.0}), st.just({"method": "hyperparameters", "members": [{}]}),
                              st.just({"seed": -1}), st.just({"colour": 1}), st.text(min_size=1, max_size=3)),
    ("mace", "r_max"): bad_number(low=0.0, strict=True, none=False),
    ("mace", "max_num_epochs"): bad_positive_int(none=False),
    ("mace", "valid_fraction"): bad_number(0.0, 1.0, strict=True, none=False),
    ("temperature_range",): st.one_of(st.just([1000, 0]), st.just([0]), st.just("hot"), st.just([0, "x"])),
    ("pressure_range",): st.one_of(st.just([10, -10]), st.just([1, 2, 3])),
}  # fmt: skip


def test_the_valid_training_baselines_are_accepted(codes, si_frames):
    accepted(potential_class(), {"code": codes["train"], "training_set": si_frames, "config": orm.Dict(TRAIN_BASE)})
    accepted(model_class(), model_inputs(codes, MODEL_BASE))


@FAST
@given(data=st.data())
def test_potential_training_config_with_one_bad_field_is_refused_naming_it(codes, si_frames, data):
    path, value = draw_one(data, TRAIN_FIELDS)
    inputs = {"code": codes["train"], "training_set": si_frames, "config": orm.Dict(mutate(TRAIN_BASE, path, value))}
    message = refusal(potential_class(), inputs)
    assert_names(message, "config." + ".".join(path), f"config.{path[0]}")


@FAST
@given(key=UNKNOWN_KEY, where=st.sampled_from([(), ("snap",), ("weights",), ("mace",), ("committee",)]))
def test_potential_training_config_with_an_unknown_key_is_refused_naming_it(codes, si_frames, key, where):
    config = mutate(TRAIN_BASE, (*where, key), 1)
    inputs = {"code": codes["train"], "training_set": si_frames, "config": orm.Dict(config)}
    assert_names(refusal(potential_class(), inputs), "config." + ".".join((*where, key)) if key else "config")


def model_class():
    from aiida_nanoos.calculations.model_training import ModelTrainingCalculation

    return ModelTrainingCalculation


MODEL_BASE = {"target": "gap", "method": "ensemble", "n_models": 2, "epochs": 2}


def model_inputs(codes, config) -> dict:
    import io

    csv = "id,cif,gap\n" + "".join(f"s{i},x,{i}\n" for i in range(6))
    return {
        "code": codes["train-model"],
        "dataset": orm.SinglefileData(io.BytesIO(csv.encode()), filename="data.csv"),
        "config": orm.Dict(config),
    }


MODEL_FIELDS = {
    "target": st.one_of(st.just(""), st.integers(), st.lists(st.text(max_size=2), max_size=2)),
    "name": st.one_of(st.integers(), st.just("model_v3")),
    "version": st.one_of(st.integers(max_value=0), st.floats(1.5, 9.5), st.text(max_size=2)),
    "method": bad_choice(("ensemble", "mc_dropout")),
    "n_models": st.one_of(st.integers(max_value=1), st.text(max_size=2), st.floats(2.5, 3.5)),
    "epochs": bad_positive_int(none=False),
    "time_budget": st.one_of(st.floats(max_value=0), st.text(max_size=2)),
    "patience": bad_positive_int(none=False),
    "batch_size": bad_positive_int(none=False),
    "learning_rate": st.one_of(st.floats(max_value=0.0), wrong_types(none=False)),
    "validation_fraction": bad_number(0.0, 1.0, strict=True, none=False),
    "seed": st.one_of(st.floats(0.5, 9.5), st.text(max_size=2)),
    "recalibration": bad_choice(("auto", "none", "isotonic", "scaling", "variance", "std")),
    "threads": bad_positive_int(none=False),
    "max_rows": st.one_of(st.integers(max_value=3), st.text(max_size=2)),
    "architecture": st.one_of(st.just({"colour": 1}), st.lists(st.integers(), min_size=1, max_size=2)),
    "graph_settings": st.one_of(st.just({"colour": 1}), st.text(min_size=1, max_size=3)),
}  # fmt: skip


@FAST
@given(data=st.data())
def test_model_training_config_with_one_bad_field_is_refused_naming_it(codes, data):
    field, value = draw_one(data, MODEL_FIELDS)
    message = refusal(model_class(), model_inputs(codes, {**MODEL_BASE, field: value}))
    assert_names(message, f"config.{field}", "config: unknown")


# ------------------------------------------------------------------------- non-finite numbers, wrong nesting
@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("elements",), [["Si"]]),
        (("elements",), [{"Si": 1}]),
        (("snap", "radelem"), [math.nan]),
        (("snap", "wj"), [math.inf]),
        (("weights", "groups"), {"md": [math.nan, 1, 1]}),
        (("weights", "groups"), {"md": ["a", 1, 1]}),
        (("weights", "groups"), [1, 2, 3]),
        (("weights", "groups"), "md"),
        (("temperature_range",), [math.nan, 1000]),
        (("temperature_range",), [-math.inf, math.inf]),
        (("pressure_range",), [math.nan, math.nan]),
    ],
)
def test_potential_training_config_with_a_non_finite_or_nested_value_is_refused(codes, si_frames, path, value):
    inputs = {"code": codes["train"], "training_set": si_frames, "config": orm.Dict(mutate(TRAIN_BASE, path, value))}
    assert_names(refusal(potential_class(), inputs), "config." + ".".join(path))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_budget", math.nan),
        ("time_budget", math.inf),
        ("learning_rate", math.nan),
        ("learning_rate", math.inf),
        ("weight_decay", -1.0),
        ("weight_decay", math.nan),
        ("seed", -1),
        ("architecture", {"dropout": "a"}),
        ("architecture", {"hidden": -3}),
        ("graph_settings", {"cutoff": -1.0}),
        ("graph_settings", {"cutoff": math.nan}),
    ],
)
def test_model_training_config_with_a_non_finite_or_out_of_range_value_is_refused(codes, field, value):
    assert_names(refusal(model_class(), model_inputs(codes, {**MODEL_BASE, field: value})), f"config.{field}")


def test_the_pipeline_schema_states_the_md_and_split_bounds_the_builder_enforces(codes):
    """Each bound of ``overrides.md`` and the split in the pipeline's JSON schema, probed at and beyond its limit:
    the schema and ``get_builder_from_protocol`` agree, and the builder's refusal names the field."""
    from aiida_nanoos.schema import json_schema, schema_errors
    from tests.core.test_schema import bounded_numbers, probes, put

    overrides = json_schema("pipeline")["properties"]["overrides"]
    checked = []
    for path, sub in bounded_numbers(overrides):
        if path[0] not in ("md", "validation_fraction", "split_seed"):
            continue
        for value, ok in probes(sub):
            field = ".".join(path)
            in_schema = [e for e in schema_errors("pipeline", {"structure": "x", "overrides": put({}, path, value)})
                         if e.startswith(f"overrides.{field}:")]  # fmt: skip
            assert (in_schema == []) is ok, (field, value, in_schema)
            if ok:
                pipeline_inputs(codes, put({}, path, value))
            else:
                with pytest.raises(ValueError, match=field):
                    pipeline_inputs(codes, put({}, path, value))
            checked.append(field)
    assert {"md.steps", "md.temperature", "md.timestep_fs", "md.atoms", "validation_fraction"} <= set(checked)
