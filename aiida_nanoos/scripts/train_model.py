"""``nanoos-train-model --data data.csv --config config.json --output DIR``: train a crystal-graph property model.

Runs :func:`aiida_nanoos.models.training.train_from_table` (config: :func:`~aiida_nanoos.models.training.
parse_model_config`) for the ``nanoos.model.train`` CalcJob; exit codes and the reason line on stderr are those of
:mod:`aiida_nanoos.scripts.common`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aiida_nanoos.scripts.common import run_script

SCRIPT = "nanoos-train-model"


def _train(arguments, config) -> str:
    from aiida_nanoos.models.structure_table import read_structure_csv
    from aiida_nanoos.models.training import train_from_table

    table = read_structure_csv(arguments.data, config["target"], config["cif_column"], config["id_column"])
    if config["max_rows"] is not None:
        table = table.subset(range(min(config["max_rows"], len(table))))
    description = train_from_table(table, config, arguments.output, log=print)
    return (
        f"{description['method']} ({description['n_members']} member(s)) on "
        f"{description['n_train']} structures: validation MAE {description['mae']:.4g} "
        f"({description['target']}), {description['training_seconds']:.0f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 2 for a bad config, 3 when reading the data or training fails (the reason is on stderr)."""
    from aiida_nanoos.models.training import parse_model_config

    return run_script(
        SCRIPT,
        __doc__.splitlines()[0],
        {"data": "CSV with a cif column and the target column"},
        parse_model_config,
        _train,
        argv,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
