"""``nanoos.potential``: a machine-learned interatomic potential (files + what it is, what it is good for)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiida import orm

#: Descriptor types a potential node can hold, and the LAMMPS style that runs each.
DESCRIPTOR_TYPES = ("SNAP", "qSNAP", "MACE", "NequIP", "ACE", "GAP")


class PotentialData(orm.Data):
    """The original design's ``MLPotential``: files in the repository, metadata as queryable attributes.

    Attributes: ``name``, ``version``, ``descriptor_type`` (one of :data:`DESCRIPTOR_TYPES`), ``elements`` (in
    the order of the potential's type indices), ``hyperparameters``, ``metrics`` (energy RMSE eV/atom, force
    MAE/RMSE eV/Å, stress), ``temperature_range`` (K) and ``pressure_range`` (GPa) it was trained for,
    ``validated``, ``files`` (role -> file name, e.g. ``coefficients``/``parameters`` for SNAP), and
    ``reference_potential`` (LAMMPS pair style and coefficients added to the ML part, e.g. ZBL). Which DFT
    calculations trained it is a provenance query (:meth:`training_calculations`), never stored by hand.
    """

    def __init__(
        self,
        files: dict[str, str | Path],
        descriptor_type: str,
        elements: Sequence[str],
        name: str,
        version: int = 1,
        hyperparameters: dict | None = None,
        metrics: dict | None = None,
        temperature_range: Sequence[float] | None = None,
        pressure_range: Sequence[float] | None = None,
        validated: bool = False,
        reference_potential: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if descriptor_type not in DESCRIPTOR_TYPES:
            raise ValueError(f"descriptor_type must be one of {DESCRIPTOR_TYPES}, got {descriptor_type!r}")
        if not elements:
            raise ValueError("a potential needs at least one element")
        names = {}
        for role, path in files.items():
            path = Path(path)
            with path.open("rb") as handle:
                self.base.repository.put_object_from_filelike(handle, path.name)
            names[role] = path.name
        required = {"SNAP": {"coefficients", "parameters"}, "qSNAP": {"coefficients", "parameters"}}
        missing = required.get(descriptor_type, {"model"}) - set(names)
        if missing:
            raise ValueError(f"a {descriptor_type} potential needs the file role(s) {sorted(missing)}")
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
            }
        )

    name = property(lambda self: self.base.attributes.get("name"))
    version = property(lambda self: self.base.attributes.get("version"))
    descriptor_type = property(lambda self: self.base.attributes.get("descriptor_type"))
    elements = property(lambda self: self.base.attributes.get("elements"))
    files = property(lambda self: self.base.attributes.get("files"))
    hyperparameters = property(lambda self: self.base.attributes.get("hyperparameters"))
    metrics = property(lambda self: self.base.attributes.get("metrics"))
    validated = property(lambda self: self.base.attributes.get("validated"))
    reference_potential = property(lambda self: self.base.attributes.get("reference_potential"))

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

    def lammps_commands(self, species: Sequence[str]) -> list[str]:
        """``pair_style`` and ``pair_coeff`` lines for a LAMMPS run whose atom types are ``species`` (in order).

        Files are referred to by name: the calculation copies them into the working directory.
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
        reference = self.reference_potential
        if not reference:
            return [f"pair_style {ml_style}", f"pair_coeff * * {ml_coeff}"]
        # hybrid/overlay: the ML part is fitted to DFT minus the reference, so both are summed at run time
        head = ml_style.split()[0]
        lines = [f"pair_style hybrid/overlay {reference['pair_style']} {ml_style}"]
        lines += [line.replace("{ELEMENTS}", elements) for line in reference_coefficients(reference, species)]
        lines.append(f"pair_coeff * * {head} {ml_coeff}")
        return lines

    def training_calculations(self) -> list[orm.CalcJobNode]:
        """DFT calculations whose outputs fed the training set(s) this potential was fitted on (provenance query)."""
        from aiida_nanoos.data.training_set import TrainingSetData

        node = self
        # a validated or relabelled copy is made from the fitted potential by a calcfunction: follow it back
        while node.creator is not None and isinstance(
            parent := next(iter(_incoming_of_type(node.creator, PotentialData)), None), PotentialData
        ):
            node = parent
        if node.creator is None:
            return []
        calculations: dict[int, orm.CalcJobNode] = {}
        for training_set in _incoming_of_type(node.creator, TrainingSetData):
            calculations.update({calc.pk: calc for calc in training_set_calculations(training_set)})
        return sorted(calculations.values(), key=lambda calc: calc.pk)


def _incoming_of_type(process: orm.ProcessNode, data_type: type) -> list[orm.Data]:
    return [node for node in process.base.links.get_incoming().all_nodes() if isinstance(node, data_type)]


def reference_coefficients(reference: dict, species: Sequence[str]) -> list[str]:
    """``pair_coeff`` lines of the reference part; ZBL gets one line per type pair with the nuclear charges."""
    from ase.data import atomic_numbers

    style = reference["pair_style"].split()[0]
    if style == "zbl":
        lines = []
        for i, first in enumerate(species, start=1):
            for j, second in enumerate(species[i - 1 :], start=i):
                lines.append(f"pair_coeff {i} {j} zbl {atomic_numbers[first]} {atomic_numbers[second]}")
        return lines
    return [f"pair_coeff {line}" for line in reference.get("pair_coeff", [])]


def training_set_calculations(training_set) -> list[orm.CalcJobNode]:
    """The DFT calculations whose outputs were gathered into ``training_set``, followed back through splits/filters."""
    calculations: dict[int, orm.CalcJobNode] = {}
    pending = [training_set]
    seen = set()
    while pending:
        node = pending.pop()
        if node.pk in seen or node.creator is None:
            continue
        seen.add(node.pk)
        for parent in node.creator.base.links.get_incoming().all_nodes():
            creator = parent.creator
            if isinstance(creator, orm.CalcJobNode):
                calculations[creator.pk] = creator
            elif type(parent) is type(training_set):
                pending.append(parent)
    return sorted(calculations.values(), key=lambda node: node.pk)
