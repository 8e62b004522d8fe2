"""Train an interatomic potential from labelled frames: the work of the ``nanoos-train`` script (no AiiDA here).

The script (:mod:`aiida_nanoos.scripts.train_potential`) runs wherever the training CalcJob runs (this workstation or
an HPC node that only has the package installed), so it reads plain files and writes plain files:

* input: ``frames.extxyz`` (ASE units) and ``config.json`` (see
  :class:`~aiida_nanoos.potentials.training_config.TrainConfig`);
* output folder: the potential's files (``potential.snapcoeff`` + ``potential.snapparam`` for SNAP/qSNAP,
  ``potential.model`` for MACE), committee members in ``committee/``, and ``metrics.json`` describing everything
  (descriptor type, elements, hyper-parameters, reference potential, training errors, timings).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from ase import Atoms

from aiida_nanoos.common.jsonsafe import json_safe
from aiida_nanoos.potentials import metrics as pm
from aiida_nanoos.potentials import snap
from aiida_nanoos.potentials.frames import frame_labels
from aiida_nanoos.potentials.training_config import (
    COMMITTEE_FOLDER,
    METRICS_FILENAME,
    POTENTIAL_STEM,
    TrainConfig,
    config_error,
    frame_elements,
    parse_train_config,
)


def snap_settings(frames: Sequence[Atoms], config: TrainConfig):
    """Hyper-parameters, weights and reference potential of a SNAP/qSNAP fit described by ``config``."""
    elements = frame_elements(frames, config)
    settings = dict(config.snap)
    rcutfac = settings.pop("rcutfac", None)
    if rcutfac is None:
        rcutfac = snap.default_rcutfac(frames)
    if config.descriptor_type == "qSNAP":
        settings["quadraticflag"] = True
    elif settings.get("quadraticflag"):
        raise config_error("snap.quadraticflag", "is set: use descriptor_type qSNAP for quadratic SNAP")
    for key in ("radelem", "wj"):
        if key in settings and len(settings[key]) != len(elements):
            raise config_error(f"snap.{key}", f"needs one value per element {list(elements)}, got {settings[key]}")
    params = snap.SnapHyperparameters.for_elements(elements, rcutfac=rcutfac, **settings)
    weights = snap.FitWeights.from_dict(config.weights) if config.weights else snap.FitWeights()
    reference = None
    if config.reference is not None:
        if config.reference.get("type") == "zbl":
            reference = snap.ReferencePotential.zbl(elements, config.reference["inner"], config.reference["outer"])
        else:
            reference = snap.ReferencePotential.from_lammps(
                config.reference["pair_style"], config.reference["pair_coeff"], elements
            )
    return params, weights, reference


def _snap_record(potential, design, directory: Path, stem: str) -> dict:
    """Write one SNAP potential and return its description (files relative to the output folder, train errors)."""
    coeff, param = potential.write(directory, stem)
    values = design.predict(potential.coefficients)
    if not np.all(np.isfinite(potential.coefficients)):
        raise FloatingPointError(f"the fit of {stem} produced non-finite coefficients")
    return {
        "coefficients": coeff,
        "parameters": param,
        "train": pm.error_summary(pm.parity_from_design(design, values)),
        "n_frames": int(design.n_frames),
    }


def train_snap(frames: Sequence[Atoms], config: TrainConfig, output: Path) -> dict:
    """Fit SNAP (linear or quadratic) and, if asked, a committee; write the files and return the description."""
    params, weights, reference = snap_settings(frames, config)
    start = time.perf_counter()
    design = snap.compute_descriptors(frames, params, reference=reference, energy_shift=config.energy_shift)
    descriptor_seconds = time.perf_counter() - start
    potential = snap.fit_design(design, weights, config.solver, config.ridge_alpha, reference)
    main = _snap_record(potential, design, output, POTENTIAL_STEM)
    description = {
        "files": {"coefficients": main["coefficients"].name, "parameters": main["parameters"].name},
        "hyperparameters": {
            **params.to_dict(),
            "solver": config.solver,
            "ridge_alpha": config.ridge_alpha if config.solver == "ridge" else None,
            "weights": weights.to_dict(),
            "n_coefficients": int(potential.coefficients.size),
        },
        "reference_potential": None if reference is None else reference.to_dict(),
        "metrics": {"train": main["train"]},
        "timing": {"descriptors_s": descriptor_seconds, "fit_s": potential.metadata["fit_seconds"]},
        "committee": [],
    }
    if config.committee:
        members = _snap_committee(frames, config, design, weights, reference, params)
        for index, (member, member_design) in enumerate(members):
            record = _snap_record(member, member_design, output / COMMITTEE_FOLDER, f"member_{index:02d}")
            description["committee"].append(
                {
                    "files": {
                        "coefficients": f"{COMMITTEE_FOLDER}/{record['coefficients'].name}",
                        "parameters": f"{COMMITTEE_FOLDER}/{record['parameters'].name}",
                    },
                    "hyperparameters": member.params.to_dict(),
                    "frames": member.metadata.get("frames"),
                    "metrics": {"train": record["train"]},
                }
            )
    return description


def _snap_committee(frames, config: TrainConfig, design, weights, reference, params) -> list[tuple]:
    """``(potential, design matrix it is evaluated on)`` for each committee member."""
    committee = config.committee
    if committee["method"] == "hyperparameters":
        members = []
        for overrides in committee["members"]:
            member_params = replace(
                params, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()}
            )
            if member_params == params:
                member_design = design
            else:
                member_design = snap.compute_descriptors(
                    frames, member_params, reference=reference, energy_shift=config.energy_shift
                )
            member = snap.fit_design(member_design, weights, config.solver, config.ridge_alpha, reference)
            members.append((member, member_design))
        return members
    result = snap.fit_committee(
        design,
        n_models=committee["size"],
        weights=weights,
        solver=config.solver,
        ridge_alpha=config.ridge_alpha,
        reference=reference,
        method=committee["method"],
        fraction=committee["fraction"],
        seed=committee["seed"],
    )
    return [(member, design) for member in result.potentials]


def train(frames: Sequence[Atoms], config: TrainConfig | dict, output: str | Path) -> dict:
    """Train the potential described by ``config`` on ``frames``; write its files and ``metrics.json`` into ``output``.

    Returns the description also written to ``metrics.json`` (file names relative to ``output``).
    """
    if isinstance(config, dict):
        config = parse_train_config(config)
    frames = list(frames)
    if not frames:
        raise ValueError("no training frames given")
    for index, atoms in enumerate(frames):
        labels = frame_labels(atoms)
        if labels["energy"] is None or labels["forces"] is None:
            raise ValueError(f"training frame {index} lacks an energy or forces label")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if config.descriptor_type in ("SNAP", "qSNAP"):
        description = train_snap(frames, config, output)
    else:
        from aiida_nanoos.potentials import mace as mace_potential

        description = mace_potential.train_mace(frames, config, output)
    description.update(
        {
            "descriptor_type": config.descriptor_type,
            "name": config.name,
            "version": config.version,
            "elements": list(frame_elements(frames, config)),
            "energy_shift": dict(config.energy_shift),
            "temperature_range": None if config.temperature_range is None else list(config.temperature_range),
            "pressure_range": None if config.pressure_range is None else list(config.pressure_range),
            "n_frames": len(frames),
            "n_atoms": int(sum(len(a) for a in frames)),
            "config": config.to_dict(),
        }
    )
    description.setdefault("timing", {})["total_s"] = time.perf_counter() - start
    (output / METRICS_FILENAME).write_text(json.dumps(json_safe(description), indent=1))
    return description
