"""``aiida-nanoos benchmark potential`` on Stillinger-Weber Si frames written as extxyz."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiida_nanoos.benchmarks.potential_fit import command
from aiida_nanoos.benchmarks.snap import command as snap_command
from aiida_nanoos.potentials.frames import write_extxyz
from aiida_nanoos.potentials.mace import mace_available
from tests.core.potentials.si_sw_frames import stillinger_weber_si

TINY_GRID = ["--twojmax", "2,4", "--rcutfac", "3.8,4.4", "--energy-weight", "30,300", "--ridge-alpha", "1e-8"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("si_sw")
    sets = {
        "train": stillinger_weber_si(15, seed=11),
        "test": stillinger_weber_si(6, seed=12),
        # another test set, hotter and more strained: a different file, not a choice of hyper-parameters
        "other_test": stillinger_weber_si(6, seed=13, strain=0.05, rattle=0.15),
    }
    paths = {}
    for name, frames in sets.items():
        paths[name] = folder / f"{name}.extxyz"
        write_extxyz(frames, paths[name])
    return paths


def _run(cmd, *args: str) -> dict:
    result = CliRunner().invoke(cmd, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def searched(files) -> dict:
    return _run(
        command,
        "--model",
        "snap",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--folds",
        "3",
        *TINY_GRID,
    )


def test_json_has_the_error_keys_of_benchmark_snap(files, searched):
    snap = _run(snap_command, "--train", str(files["train"]), "--test", str(files["test"]), "--twojmax", "4")
    for key in ("train_errors", "test_errors", "train_errors_by_group", "test_errors_by_group"):
        assert searched[key].keys() == snap[key].keys()
    for label in ("train_errors", "test_errors"):
        for quantity in ("energy", "force", "stress"):
            assert searched[label][quantity].keys() == snap[label][quantity].keys() == {"mae", "rmse", "count"}
    assert searched["test_errors"]["force"]["count"] == snap["test_errors"]["force"]["count"] == 6 * 8 * 3
    assert searched["units"] == {"energy": "eV/atom", "force": "eV/Å", "stress": "bar"}
    assert searched["fit_seconds"] >= searched["timing_seconds"]["search"] > 0
    head = searched["headline"]
    assert head["test_energy_mae_meV_per_atom"] == pytest.approx(1000 * searched["test_errors"]["energy"]["mae"])


def test_chosen_hyperparameters_are_the_best_cv_row(searched):
    table = searched["cross_validation"]["table"]
    # the 2 x 2 x 2 grid, plus up to two cutoffs beyond the winning edge (2 energy weights each) at the best 2J
    extra = [row for row in table if row["rcutfac"] not in (3.8, 4.4)]
    assert len(table) == 8 + len(extra) and len(extra) in (0, 2, 4)
    assert all(row["twojmax"] == 4 and (row["rcutfac"] > 4.4 or row["rcutfac"] < 3.8) for row in extra)
    assert [row["score"] for row in table] == sorted(row["score"] for row in table)
    chosen, best = searched["hyperparameters"], table[0]
    assert (chosen["twojmax"], chosen["rcutfac"]) == (best["twojmax"], best["rcutfac"])
    assert (chosen["energy_weight"], chosen["ridge_alpha"]) == (best["energy_weight"], best["ridge_alpha"])
    assert chosen["quadraticflag"] is False


def test_choice_does_not_depend_on_the_test_file(files, searched):
    other = _run(
        command,
        "--model",
        "snap",
        "--train",
        str(files["train"]),
        "--test",
        str(files["other_test"]),
        "--folds",
        "3",
        *TINY_GRID,
    )
    assert other["hyperparameters"] == searched["hyperparameters"]
    assert other["cross_validation"]["table"] == searched["cross_validation"]["table"]
    assert other["train_errors"] == searched["train_errors"]
    assert other["test_errors"]["force"]["mae"] != searched["test_errors"]["force"]["mae"]


def test_quadratic_snap_without_search(files):
    results = _run(
        command,
        "--model",
        "qsnap",
        "--no-search",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--twojmax",
        "4",
        "--rcutfac",
        "4.4",
    )
    assert "cross_validation" not in results and results["timing_seconds"]["search"] == 0.0
    assert results["hyperparameters"]["quadraticflag"] is True and results["hyperparameters"]["twojmax"] == 4
    assert results["n_coefficients"] == 1 + 14 + 14 * 15 // 2  # constant, linear and quadratic terms of 2J=4


def test_unreadable_file_is_a_clear_usage_error(files, tmp_path):
    bad = tmp_path / "broken.extxyz"
    bad.write_text("3\nnot an extxyz header\nSi 0 0\n")
    result = CliRunner().invoke(command, ["--train", str(bad), "--test", str(files["test"])])
    assert result.exit_code == 2
    assert "Invalid value for --train" in result.output and "broken.extxyz: cannot read frames" in result.output


def test_unlabelled_frames_are_refused(files, tmp_path):
    from ase.build import bulk

    bare = tmp_path / "bare.extxyz"
    write_extxyz([bulk("Si", "diamond", a=5.43, cubic=True)] * 3, bare)
    result = CliRunner().invoke(command, ["--train", str(files["train"]), "--test", str(bare)])
    assert result.exit_code == 2 and "need energy and forces labels" in result.output


def test_too_few_frames_for_the_folds(files):
    result = CliRunner().invoke(command, ["--train", str(files["test"]), "--test", str(files["test"]), "--folds", "7"])
    assert result.exit_code == 2 and "6 training frames cannot make 7 folds" in result.output


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("dtype=float16", "dtype is float32 or float64"),
        ("num_channel=8", "unknown MACE setting 'num_channel' (known: r_max, num_channels"),
        ("lr=fast", "value must be a number or true/false"),
    ],
)
def test_bad_mace_setting_is_a_usage_error_before_any_training(files, setting, message):
    arguments = ["--model", "mace", "--train", str(files["train"]), "--test", str(files["test"])]
    result = CliRunner().invoke(command, [*arguments, "--mace-setting", setting])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.skipif(not mace_available(), reason="mace-torch is not installed")
@pytest.mark.parametrize(
    ("stage_two", "dtype"), [(0.25, "float32"), (0.0, "float64")], ids=["second stage float32", "one stage float64"]
)
def test_mace_trains_within_its_budget(files, tmp_path, stage_two, dtype):
    import numpy as np
    import torch

    from aiida_nanoos.potentials.frames import frame_labels, read_frames
    from aiida_nanoos.potentials.mace import predict

    results = _run(
        command, "--model", "mace", "--train", str(files["train"]), "--test", str(files["test"]),
        "--time-budget", "20", "--mace-setting", "num_channels=8", "--mace-setting", "max_L=0",
        "--mace-setting", "max_num_epochs=100000", "--mace-setting", f"stage_two={stage_two}",
        "--mace-setting", f"dtype={dtype}",
        "--write-potential", str(tmp_path),
    )  # fmt: skip
    assert 2 <= results["epochs"] < 100000  # stopped by time, not by epochs
    if stage_two:  # a fresh run planned for the budget left, its last quarter at a tenth of the learning rate
        assert results["stage_two_from_epoch"] == round(0.75 * results["epochs"])
    else:  # the calibration run continued
        assert results["stage_two_from_epoch"] is None
    # the reference energy was refitted to the training frames: no error common to all of them is left
    assert set(results["atomic_energy_shift_eV"]) == {"Si"}
    train = read_frames(files["train"])
    per_atom = [
        (frame_labels(atoms)["energy"] - p.energy) / len(atoms)
        for atoms, p in zip(train, predict(tmp_path / "potential.model", train, stress=False), strict=True)
    ]
    assert abs(np.mean(per_atom)) < 1e-6
    assert results["hyperparameters"]["num_channels"] == 8 and results["n_parameters"] > 0
    assert results["hyperparameters"]["dtype"] == dtype
    assert results["test_errors"]["force"]["count"] == 6 * 8 * 3
    assert 0 < results["test_errors"]["force"]["mae"] < 5.0
    # mace-torch sets float64 process-wide; left so, every later crystal-graph network would get float64 weights
    assert torch.get_default_dtype() == torch.float32
