"""Shared test fixtures: a temporary AiiDA profile (aiida-core's fixtures) and the public benchmark data."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# AiiDA reads AIIDA_PATH when it is first imported: keep tests out of the user's ~/.aiida.
os.environ.setdefault("AIIDA_PATH", tempfile.mkdtemp(prefix="nanoos-test-aiida-"))

# The daemon fixtures start `verdi`: make the venv's scripts findable even when pytest is called by path.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

pytest_plugins = ["aiida.tools.pytest_fixtures"]

#: Fixtures that run real pw.x, LAMMPS or a daemon: a test that asks for one is ``slow``, so that
#: ``pytest -m "not slow"`` is the quick loop while developing (the full suite is ``make test``).
SLOW_FIXTURES = frozenset(
    {"nanoos_resources", "label_builder", "si8_training_set", "si_snap_training", "si_snap", "daemon", "daemon_profile"}
)
#: Modules slow without such a fixture (measured with ``--durations``): services and profiles from scratch, pw.x for
#: pseudopotential checks, network training, campaigns that train a model, daemon start/stop.
SLOW_MODULES = frozenset(
    {
        "tests/test_setup.py",
        "tests/test_cluster.py",
        "tests/test_pseudos.py",
        "tests/test_potential_mace.py",
        "tests/test_campaign_daemon.py",
        "tests/test_campaign_dft.py",
        "tests/test_campaign_surrogate.py",
        "tests/test_model.py",
        "tests/test_cli_model.py",
        "tests/core/models/test_cgcnn.py",
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())) or module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


ROOT = Path(__file__).resolve().parent.parent
#: ../shared next to the checkout holds public benchmark data sets (never copied into the repository).
SHARED = Path(os.environ.get("NANOOS_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session", autouse=True)
def aiida_profile(aiida_config, aiida_profile_factory):
    """aiida-core's temporary profile, but with the ZeroMQ broker, so processes can be submitted to a daemon."""
    from aiida.plugins import BrokerFactory

    broker_config = BrokerFactory("core.zeromq").get_default_config()
    with aiida_profile_factory(aiida_config, broker_backend="core.zeromq", broker_config=broker_config) as profile:
        # a loaded 2-core machine answers the daemon controller slowly: the 2 s default times out when stopping it
        aiida_config.set_option("daemon.timeout", 60, scope=profile.name)
        aiida_config.store()
        yield profile


@pytest.fixture(autouse=True)
def reports_reach_the_database(aiida_profile):
    """Every test starts with process reports going to the database: a command invoked in this process by an earlier
    test (``CliRunner``) reconfigures aiida's logging without the database handler once the storage is loaded."""
    from aiida_nanoos.cli.progress import keep_reports_in_database

    keep_reports_in_database()


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """Folder of the public benchmark data sets; skips the test where it is absent."""
    path = SHARED / "benchmarks"
    if not path.is_dir():
        pytest.skip(f"public benchmark data not found at {path} (set NANOOS_SHARED to the folder holding benchmarks/)")
    return path


@pytest.fixture(scope="session")
def nanoos_resources(aiida_profile):
    """localhost computer, pw/lmp codes and the nanoos/PBE/US family in the test profile, made by our own setup code."""
    from aiida import orm

    from aiida_nanoos.setup.profile import SetupReport, configure_resources

    report = configure_resources(SetupReport())
    return {
        "report": report,
        "pw": orm.load_code("pw@localhost"),
        "lmp": orm.load_code("lmp@localhost"),
        "family": "nanoos/PBE/US",
    }


@pytest.fixture
def silicon_primitive():
    """Two-atom diamond Si cell: the cheapest real DFT system in the suite."""
    from aiida import orm
    from ase.build import bulk

    return orm.StructureData(ase=bulk("Si", "diamond", a=5.43))


#: Low-cost pw.x settings for tests: tiny cutoffs and a coarse k-mesh keep one SCF on Si2 around a second.
FAST_DFT_OVERRIDES = {
    "base": {
        "kpoints_distance": 0.6,
        "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}},
    }
}


@pytest.fixture
def label_builder(nanoos_resources):
    """Factory of LabelWorkChain builders with the fast test settings (insulator occupations for Si)."""
    from aiida_quantumespresso.common.types import ElectronicType
    from aiida_quantumespresso.workflows.protocols.utils import recursive_merge

    from aiida_nanoos.workflows.label import LabelWorkChain

    def factory(code=None, overrides=None, **kwargs):
        return LabelWorkChain.get_builder_from_protocol(
            code or nanoos_resources["pw"],
            protocol="fast",
            overrides=recursive_merge(FAST_DFT_OVERRIDES, overrides or {}),
            electronic_type=ElectronicType.INSULATOR,
            **kwargs,
        )

    return factory
