"""``nanoos-train --frames frames.extxyz --config config.json --output DIR``: fit an interatomic potential.

Runs :func:`aiida_nanoos.potentials.training.train` (SNAP, quadratic SNAP or MACE, see
:class:`~aiida_nanoos.potentials.training_config.TrainConfig`) for the ``nanoos.potential.train`` CalcJob; exit
codes and the reason line on stderr are those of :mod:`aiida_nanoos.scripts.common`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aiida_nanoos.scripts.common import run_script

SCRIPT = "nanoos-train"


def _train(arguments, config) -> str:
    from aiida_nanoos.potentials.frames import read_frames
    from aiida_nanoos.potentials.training import train

    frames = read_frames(arguments.frames, stress_unit="eV/A3")
    description = train(frames, config, arguments.output)
    errors = description["metrics"]["train"]
    return (
        f"{description['descriptor_type']} on {description['n_frames']} frames: "
        f"energy RMSE {errors.get('energy_rmse', float('nan')):.4g} eV/atom, "
        f"force RMSE {errors.get('force_rmse', float('nan')):.4g} eV/Å"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 2 for a bad config, 3 when the fit fails (the reason is on stderr)."""
    from aiida_nanoos.potentials.training_config import parse_train_config

    return run_script(
        SCRIPT,
        __doc__.splitlines()[0],
        {"frames": "labelled frames (extxyz, ASE units)"},
        parse_train_config,
        _train,
        argv,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
