"""``aiida-nanoos benchmark snap`` on FitSNAP's tantalum data (JSON and extxyz)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiida_nanoos.benchmarks.snap import command


@pytest.fixture(scope="module")
def ta(shared_benchmarks: Path) -> Path:
    path = shared_benchmarks / "fitsnap_ta"
    if not path.is_dir():
        pytest.skip("fitsnap_ta benchmark data not present")
    return path


def _run(*args: str) -> dict:
    result = CliRunner().invoke(command, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_benchmark_reproduces_fitsnap_training_errors(ta: Path, tmp_path: Path):
    results = _run(
        "--train", str(ta / "JSON"), "--test", str(ta / "JSON"),
        "--fitsnap-input", str(ta / "Ta-example.in"),
        "--reference-metrics", str(ta / "20May21_Standard" / "Ta_metrics.md"),
        "--write-potential", str(tmp_path),
    )  # fmt: skip
    assert results["same_set"] and results["n_train_frames"] == 363 and results["design_shape"] == [15213, 31]
    ratios = results["reference_metrics"]["ratios"]
    assert set(ratios) == {"energy_mae", "energy_rmse", "force_mae", "force_rmse"}
    assert all(r["ratio"] <= 1.0 for r in ratios.values())
    assert results["test_errors"]["force"]["rmse"] == pytest.approx(0.160973, rel=1e-5)  # through pair_style snap
    assert results["lammps_vs_linear"]["max_force_diff"] < 1e-9
    assert (tmp_path / "snap.snapcoeff").exists() and results["pair_commands"][0].startswith("pair_style hybrid")


def test_benchmark_on_extxyz_with_defaults(ta: Path):
    """No FitSNAP input: defaults for any element; train on displaced BCC, test on displaced FCC."""
    xyz = ta / "XYZ_same_data"
    results = _run(
        "--train", str(xyz / "Displaced_BCC.xyz"), "--test", str(xyz / "Displaced_FCC.xyz"), "--twojmax", "4"
    )
    assert results["elements"] == ["Ta"] and results["params"]["twojmax"] == 4 and not results["same_set"]
    assert results["reference_potential"] is None and results["n_coefficients"] == 15
    assert results["n_test_frames"] == 9 and results["test_errors"]["force"]["count"] == 9 * 3 * 48
    # A BCC-only fit transfers local forces to FCC but cannot know the FCC-BCC energy difference.
    train, test = results["train_errors"], results["test_errors"]
    assert train["energy"]["rmse"] < 0.01 and test["energy"]["rmse"] > 10 * train["energy"]["rmse"]
    assert train["force"]["rmse"] < 0.3 and test["force"]["rmse"] < 0.3
    assert results["timing_seconds"]["descriptors"] > 0.0
