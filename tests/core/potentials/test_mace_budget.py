"""How many epochs a MACE training with a time budget plans after its calibration run (no mace-torch needed)."""

import pytest

from aiida_nanoos.potentials.mace import affordable_epochs


@pytest.mark.parametrize("seconds_left", [60.0, 600.0, 1700.0])
def test_planned_epochs_end_within_the_budget_when_they_run_slower_than_calibrated(seconds_left):
    # mlearn Si, float32, 1800 s budget: the 2 calibration epochs took 14.7 s each, the planned run's 15.7 s (7 %
    # slower); mace-torch's closing evaluations and the refit of the atomic energies took about 5 s more
    calibrated, actual, closing = 14.7, 15.7, 5.0
    epochs = affordable_epochs(seconds_left, calibrated)
    assert epochs >= 1
    assert epochs * actual + closing <= seconds_left


def test_no_epochs_when_no_time_is_left():
    assert affordable_epochs(-5.0, 14.7) == 0
    assert affordable_epochs(10.0, 14.7) == 0
