"""DFT evaluators: band gap and formation energy from pw.x, and the elemental references they share."""

from __future__ import annotations

import hashlib
import json
import pathlib

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_
from aiida_quantumespresso.common.types import ElectronicType
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge
from ase.build import bulk

from aiida_nanoos.functions.properties import (
    band_gap_properties,
    collect_reference_energies,
    formation_energy_properties,
)
from aiida_nanoos.pseudos import FAMILY_LABEL
from aiida_nanoos.workflows.common import (
    PwBaseWorkChain,
    ResumesWhenPlayed,
    check_pseudopotentials,
    elements_of,
    launched_child,
    pw_base_builder,
    pw_inputs_for,
)

#: Reference crystal of each element for formation energies (ground-state structures at PBE-like lattice constants;
#: elements without one here cannot be referenced). Carbon uses diamond, 25 meV/atom above graphite in PBE.
REFERENCE_CRYSTALS: dict[str, dict] = {
    "C": {"crystalstructure": "diamond", "a": 3.57},
    "Si": {"crystalstructure": "diamond", "a": 5.47},
    "Ge": {"crystalstructure": "diamond", "a": 5.76},
    "Al": {"crystalstructure": "fcc", "a": 4.04},
    "Ga": {"crystalstructure": "fcc", "a": 4.24},  # α-Ga is orthorhombic; fcc is within ~10 meV/atom
    "Mo": {"crystalstructure": "bcc", "a": 3.16},
    "W": {"crystalstructure": "bcc", "a": 3.18},
    "B": {"crystalstructure": "fcc", "a": 2.86},  # α-B12 is too large for a cheap reference
}

#: Extra recording which element and settings a reference SCF was run with, so later campaigns reuse it.
REFERENCE_EXTRA = "nanoos_reference"


def _protocol_file() -> pathlib.Path:
    return pathlib.Path(__file__).parent.parent / "protocols" / "evaluators.yaml"


class _DftEvaluator(ResumesWhenPlayed, ProtocolMixin, WorkChain):
    """Shared spec: a structure, a pseudo family, and PwBaseWorkChain inputs without structure and pseudos."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The candidate to evaluate.")
        spec.input("pseudo_family", valid_type=orm.Str, default=lambda: orm.Str(FAMILY_LABEL))
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace="scf",
            exclude=("pw.structure", "pw.pseudos", "pw.parent_folder"),
            namespace_options={"help": "Inputs of the PwBaseWorkChain SCF (the same for every candidate)."},
        )
        spec.inputs.validator = cls.validate_evaluator_inputs
        spec.output("properties", valid_type=orm.Dict, help="Campaign properties of the candidate.")
        spec.exit_code(401, "ERROR_SCF_FAILED", message="The SCF of the candidate failed.")

    @staticmethod
    def validate_evaluator_inputs(inputs: dict, _) -> str | None:
        if "structure" not in inputs:
            return None  # the campaign fills the structure per candidate
        return check_pseudopotentials(inputs["pseudo_family"].value, elements_of([inputs["structure"]]))

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return _protocol_file()

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode | str,
        elements: list[str],
        template: orm.StructureData,
        protocol: str | None = None,
        overrides: dict | None = None,
        electronic_type: ElectronicType = ElectronicType.METAL,
        options: dict | None = None,
    ):
        """Builder for candidates made of ``elements``: one set of cutoffs for all, so energies compare."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.scf = pw_base_builder(
            code,
            template,
            elements,
            inputs["pseudo_family"],
            protocol=inputs["base_protocol"],
            overrides=inputs.get("scf"),
            electronic_type=electronic_type,
            # the protocol's scheduler options (resources, walltime, account, queue_name), the argument winning
            options=recursive_merge(inputs.get("options", {}), options or {}),
        )
        builder.pseudo_family = orm.Str(inputs["pseudo_family"])
        return builder

    def run_scf(self):
        inputs = pw_inputs_for(
            self.exposed_inputs(PwBaseWorkChain, namespace="scf"),
            self.inputs.structure,
            self.inputs.pseudo_family.value,
            "scf",
        )
        launched = launched_child(self.node, "scf")  # this step replayed after a daemon worker died
        return ToContext(scf=launched if launched is not None else self.submit(PwBaseWorkChain, **inputs))

    def scf_failed(self) -> bool:
        if self.ctx.scf.is_finished_ok:
            return False
        self.report(f"SCF {self.ctx.scf.process_label}<{self.ctx.scf.pk}> failed ({self.ctx.scf.exit_status})")
        return True


class BandGapWorkChain(_DftEvaluator):
    """``nanoos.evaluators.band_gap``: PBE band gap of a candidate from the eigenvalues of one SCF.

    The gap is read on the SCF k-point mesh (highest filled to lowest empty level, counting electrons), so it is
    an upper bound when the band edges lie between mesh points; smearing keeps metals from failing, and pw.x
    adds empty bands with smearing, so the conduction band edge is always there.
    """

    #: Properties in the ``properties`` output (a campaign checks its objective against them before it runs).
    PROPERTIES = ("bandgap", "vbm", "cbm", "direct_gap", "metallic", "total_energy", "energy_per_atom")

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.run_scf, if_(cls.scf_failed)(cls.fail), cls.results)

    def fail(self):
        return self.exit_codes.ERROR_SCF_FAILED

    def results(self):
        scf = self.ctx.scf
        self.out("properties", band_gap_properties(scf.outputs.output_band, scf.outputs.output_parameters))


def reference_key(exposed: dict, family_label: str) -> str:
    """Fingerprint of the settings an energy depends on: cutoffs, k-point density, smearing, family."""
    system = exposed["pw"]["parameters"].get_dict().get("SYSTEM", {})
    settings = {
        "family": family_label,
        "ecutwfc": system.get("ecutwfc"),
        "ecutrho": system.get("ecutrho"),
        "occupations": system.get("occupations"),
        "smearing": system.get("smearing"),
        "degauss": system.get("degauss"),
        "kpoints_distance": exposed["kpoints_distance"].value if "kpoints_distance" in exposed else None,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def find_reference(element: str, key: str) -> orm.Dict | None:
    """``output_parameters`` of a finished reference SCF of ``element`` with these settings, if one exists."""
    query = orm.QueryBuilder()
    query.append(
        orm.WorkChainNode,
        filters={
            f"extras.{REFERENCE_EXTRA}.element": element,
            f"extras.{REFERENCE_EXTRA}.key": key,
            "attributes.exit_status": 0,
        },
        tag="scf",
    )
    query.append(orm.Dict, with_incoming="scf", edge_filters={"label": "output_parameters"})
    query.order_by({"scf": {"ctime": "asc"}})
    result = query.first()
    return result[0] if result else None


class ElementalReferencesWorkChain(_DftEvaluator):
    """``nanoos.references``: energy per atom of each element's reference crystal, computed once per settings.

    A reference SCF is tagged with the element and a fingerprint of the settings (cutoffs, k-points, smearing,
    family); any later run with the same settings reuses it instead of recomputing.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs["structure"].required = False
        spec.input("elements", valid_type=orm.List, help="Elements to reference.")
        spec.outline(cls.run_references, cls.results)
        spec.output("reference_energies", valid_type=orm.Dict, help="element -> energy per atom (eV).")
        spec.outputs["properties"].required = False
        spec.exit_code(402, "ERROR_NO_REFERENCE_CRYSTAL", message="No reference crystal is known for {elements}.")

    def run_references(self):
        elements = self.inputs.elements.get_list()
        unknown = sorted(set(elements) - set(REFERENCE_CRYSTALS))
        if unknown:
            return self.exit_codes.ERROR_NO_REFERENCE_CRYSTAL.format(elements=unknown)
        exposed = self.exposed_inputs(PwBaseWorkChain, namespace="scf")
        family_label = self.inputs.pseudo_family.value
        self.ctx.key = reference_key(exposed, family_label)
        self.ctx.found = {}
        running = {}
        for element in elements:
            found = find_reference(element, self.ctx.key)
            if found is not None:
                self.report(f"reusing reference of {element} from {found.creator.process_label}<{found.creator.pk}>")
                self.ctx.found[element] = found.uuid
                continue
            crystal = orm.StructureData(ase=bulk(element, **REFERENCE_CRYSTALS[element]))
            inputs = pw_inputs_for(exposed, crystal, family_label, f"reference_{element}")
            node = self.submit(PwBaseWorkChain, **inputs)
            node.base.extras.set(REFERENCE_EXTRA, {"element": element, "key": self.ctx.key})
            running[f"reference_{element}"] = node
        return ToContext(**running)

    def results(self):
        energies = {element: orm.load_node(uuid) for element, uuid in self.ctx.found.items()}
        for element in self.inputs.elements.get_list():
            if element in energies:
                continue
            node = self.ctx[f"reference_{element}"]
            if not node.is_finished_ok:
                self.report(f"reference SCF of {element} failed ({node.exit_status})")
                return self.exit_codes.ERROR_SCF_FAILED
            energies[element] = node.outputs.output_parameters
        self.out("reference_energies", collect_reference_energies(**energies))


class FormationEnergyWorkChain(_DftEvaluator):
    """``nanoos.evaluators.formation_energy``: formation energy per atom and stability score of a candidate.

    Elemental references come from ``reference_energies`` when the campaign computed them once up front;
    otherwise this work chain runs (or reuses) them itself with the same settings as the candidate.
    """

    #: Properties in the ``properties`` output (a campaign checks its objective against them before it runs).
    PROPERTIES = ("formation_energy", "stability_score", "total_energy", "energy_per_atom")

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            "reference_energies",
            valid_type=orm.Dict,
            required=False,
            help="element -> energy per atom (eV) at the same settings; computed here when absent.",
        )
        spec.outline(
            cls.run_scf_and_references,
            if_(cls.scf_failed)(cls.fail),
            cls.results,
        )

    def run_scf_and_references(self):
        running = dict(self.run_scf())
        if "reference_energies" not in self.inputs:
            running["references"] = launched_child(self.node, "references") or self.submit(
                ElementalReferencesWorkChain,
                scf=self.exposed_inputs(PwBaseWorkChain, namespace="scf"),
                pseudo_family=self.inputs.pseudo_family,
                elements=orm.List(elements_of([self.inputs.structure])),
                metadata={"call_link_label": "references"},
            )
        return ToContext(**running)

    def fail(self):
        return self.exit_codes.ERROR_SCF_FAILED

    def results(self):
        if "reference_energies" in self.inputs:
            references = self.inputs.reference_energies
        else:
            if not self.ctx.references.is_finished_ok:
                self.report("elemental references failed")
                return self.exit_codes.ERROR_SCF_FAILED
            references = self.ctx.references.outputs.reference_energies
        self.out(
            "properties",
            formation_energy_properties(self.inputs.structure, self.ctx.scf.outputs.output_parameters, references),
        )
