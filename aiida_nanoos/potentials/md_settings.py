"""What an MD run with a machine-learned potential may be asked for, and the allowed values (no AiiDA).

:func:`aiida_nanoos.calculations.md.md_parameters` checks the settings with these tables and the configuration
schema (:mod:`aiida_nanoos.schema`) states them, so the ``md`` block of a pipeline file is described and refused by
the same rules.
"""

from __future__ import annotations

from aiida_nanoos.common.checks import Bound

#: Ensembles of ``md_parameters`` and the LAMMPS integrator behind each.
ENSEMBLES = {"nve": "nve", "nvt": "nvt", "npt": "npt"}
#: Default temperature (K) above which a run counts as blown up (override with settings ``max_temperature``).
DEFAULT_MAX_TEMPERATURE = 1.0e4
#: Numbers of ``md_parameters``: temperatures in K, times in fs, pressure in GPa, counts of steps.
MD_BOUNDS = {
    "temperature": Bound(float, 0.0, low_open=True),
    "steps": Bound(int, 1),
    "timestep_fs": Bound(float, 0.0, low_open=True),
    "seed": Bound(int, 1),
    "pressure_gpa": Bound(float),
    "thermo_every": Bound(int, 1),
    "dump_every": Bound(int, 1),
    "tdamp_fs": Bound(float, 0.0, low_open=True),
    "pdamp_fs": Bound(float, 0.0, low_open=True),
    "initial_temperature": Bound(float, 0.0, low_open=True),
}
#: The blow-up threshold (K) and the size of the pipeline's MD cell (the labelled cell repeated to at least this many
#: atoms).
MAX_TEMPERATURE = Bound(float, 0.0, low_open=True)
MD_ATOMS = Bound(int, 1)
