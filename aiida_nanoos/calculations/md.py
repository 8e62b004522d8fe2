"""``nanoos.md``: LAMMPS MD with a machine-learned potential node, on top of aiida-lammps.

aiida-lammps' ``LammpsPotentialData`` holds one file, and a SNAP potential has two (``.snapcoeff`` and
``.snapparam``). This CalcJob keeps everything else of ``lammps.base`` (parameters schema, input blocks, parser
with thermo, trajectory and final structure) and swaps the potential for a :class:`PotentialData`, whose files are
copied into the working directory and whose own ``pair_style``/``pair_coeff`` lines are written. Its parser first
checks whether the dynamics blew up (NaN, absurd temperature: 350; lost atoms: 351) or was stopped before its end
(out of walltime: aiida-lammps' 400, with the last intermediate restart file as output), so that
:class:`~aiida_nanoos.workflows.md_base.MdBaseWorkChain` can handle each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from aiida import orm
from aiida.common import datastructures
from aiida_lammps.calculations.base import LammpsBaseCalculation
from aiida_lammps.parsers import inputfile
from aiida_lammps.parsers.base import LammpsBaseParser
from aiida_lammps.parsers.utils import generate_lammps_structure

from aiida_nanoos.data.potential import LAMMPS_READY, PotentialData
from aiida_nanoos.potentials.md_settings import DEFAULT_MAX_TEMPERATURE, ENSEMBLES, MAX_TEMPERATURE, MD_BOUNDS
from aiida_nanoos.potentials.md_stability import detect_instability

__all__ = ("DEFAULT_MAX_TEMPERATURE", "ENSEMBLES", "MdCalculation", "MdParser", "md_parameters")
#: LAMMPS errors meaning atoms left the box or their processor's domain between neighbour list rebuilds.
LOST_ATOMS_ERRORS = ("Lost atoms", "Out of range atoms")
#: The line LAMMPS prints when a run ends; a screen output without it (and without an ERROR) was cut short.
END_OF_RUN = "Total wall time"


def md_parameters(
    ensemble: str = "nvt",
    temperature: float = 300.0,
    steps: int = 1000,
    timestep_fs: float = 1.0,
    seed: int = 1,
    pressure_gpa: float = 0.0,
    thermo_every: int = 10,
    dump_every: int = 100,
    tdamp_fs: float | None = None,
    pdamp_fs: float | None = None,
    initial_temperature: float | None = None,
) -> dict:
    """aiida-lammps ``parameters`` for NVE / NVT (Nosé-Hoover) / NPT (isotropic) MD in metal units.

    Velocities are drawn at ``initial_temperature`` (default: ``temperature``; for NVE the initial kinetic energy
    equipartitions, so the run settles near half of it) from a Gaussian with seed ``seed``, without net momentum or
    rotation. Damping times default to 100 (thermostat) and 1000 (barostat) timesteps, as the LAMMPS manual advises.
    A value of the wrong type or out of range (``steps: true``, ``temperature: .nan``) raises ``ValueError`` naming
    it, before anything is stored.
    """
    if not isinstance(ensemble, str) or ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {sorted(ENSEMBLES)}, got {ensemble!r}"[:400])
    given = {
        **{"temperature": temperature, "steps": steps, "timestep_fs": timestep_fs, "seed": seed},
        **{"pressure_gpa": pressure_gpa, "thermo_every": thermo_every, "dump_every": dump_every},
        **{"tdamp_fs": tdamp_fs, "pdamp_fs": pdamp_fs, "initial_temperature": initial_temperature},
    }
    for name, bound in MD_BOUNDS.items():
        problem = None if given[name] is None else bound.problem(given[name])
        if problem:
            raise ValueError(f"{name} {problem}"[:400])
    timestep_ps = timestep_fs / 1000.0
    tdamp = (tdamp_fs if tdamp_fs is not None else 100.0 * timestep_fs) / 1000.0
    pdamp = (pdamp_fs if pdamp_fs is not None else 1000.0 * timestep_fs) / 1000.0
    constraints: dict = {}
    if ensemble in ("nvt", "npt"):
        constraints["temp"] = [temperature, temperature, tdamp]
    if ensemble == "npt":
        bar = pressure_gpa * 1.0e4
        constraints["iso"] = [bar, bar, pdamp]
    integration: dict = {"style": ENSEMBLES[ensemble]}
    if constraints:
        integration["constraints"] = constraints
    return {
        "control": {"units": "metal", "timestep": timestep_ps},
        "structure": {"atom_style": "atomic"},
        "potential": {},
        "thermo": {
            "printing_rate": int(thermo_every),
            "thermo_printing": {
                "step": True,
                "temp": True,
                "pe": True,
                "ke": True,
                "etotal": True,
                "press": True,
                "vol": True,
            },
        },
        "md": {
            "integration": integration,
            "max_number_steps": int(steps),
            "velocity": [
                {
                    "create": {"temp": initial_temperature or temperature, "seed": int(seed)},
                    "dist": "gaussian",
                    "mom": "yes",
                    "rot": "yes",
                }
            ],
        },
        "dump": {"dump_rate": int(dump_every)},
    }


def lammps_species(structure: orm.StructureData) -> list[str]:
    """Element of each LAMMPS atom type, in the order aiida-lammps numbers them (first appearance in the sites)."""
    symbols: dict[str, str] = {}
    kinds = {kind.name: kind for kind in structure.kinds}
    for site in structure.sites:
        if site.kind_name not in symbols:
            kind = kinds[site.kind_name]
            if len(kind.symbols) != 1:
                raise ValueError(f"kind {kind.name} is an alloy site: MD needs one element per atom")
            symbols[site.kind_name] = kind.symbols[0]
    return list(symbols.values())


def validate_md_inputs(parent: Callable | None, value: dict, ctx) -> str | None:
    """Refuse a structure with an element the potential lacks (or a potential LAMMPS cannot run) before submission.

    ``parent`` is aiida-lammps' own namespace validator (restart settings), taken from its spec.
    """
    message = parent(value, ctx) if parent is not None else None
    if message:
        return message
    potential = value.get("potential")
    if potential is not None and potential.descriptor_type not in LAMMPS_READY:
        return (
            f"potential: a {potential.descriptor_type} potential cannot run in this LAMMPS build (no ML-IAP Python "
            "or ML-PACE package); run MACE MD through ASE (aiida_nanoos.potentials.mace.run_ase_md)"
        )
    if potential is not None and "structure" in value:
        try:
            potential.check_elements(lammps_species(value["structure"]))
        except ValueError as error:
            return f"structure: {error}"
    settings = value["settings"].get_dict() if "settings" in value else {}
    problem = MAX_TEMPERATURE.problem(settings["max_temperature"]) if "max_temperature" in settings else None
    return f"settings.max_temperature {problem}"[:400] if problem else None


class MdCalculation(LammpsBaseCalculation):
    """LAMMPS MD (NVE/NVT/NPT or minimisation) with a ``nanoos.potential``; outputs as aiida-lammps' ``lammps.base``."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs.pop("potential")
        spec.input("potential", valid_type=PotentialData, help="The machine-learned potential (nanoos.potential).")
        spec.inputs.validator = functools.partial(validate_md_inputs, spec.inputs.validator)
        spec.inputs["metadata"]["options"]["parser_name"].default = "nanoos.md"
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.exit_code(
            350,
            "ERROR_MD_UNSTABLE",
            message="The MD blew up: {reason}. Retry with a smaller timestep, or add such configurations to the "
            "training set.",
        )
        spec.exit_code(
            351,
            "ERROR_MD_LOST_ATOMS",
            message="The MD lost atoms: {reason}. Retry with a smaller timestep and more frequent neighbour list "
            "rebuilds.",
        )

    def prepare_for_submission(self, folder):
        options = self.inputs.metadata.options
        parameters = self.inputs.parameters.get_dict()
        settings = self.inputs.settings.get_dict() if "settings" in self.inputs else {}
        potential: PotentialData = self.inputs.potential
        structure: orm.StructureData = self.inputs.structure
        species = lammps_species(structure)

        restart = self.handle_restartfiles(settings=settings, parameters=parameters)
        structure_text, _ = generate_lammps_structure(structure, "atomic")
        with folder.open(options.structure_filename, "w") as handle:
            handle.write(structure_text)
        for filename in potential.files.values():
            with folder.open(filename, "wb") as handle:
                handle.write(potential.base.repository.get_object_content(filename, mode="rb"))

        script = self.input_script(parameters, species, restart.get("restart_file"))
        with folder.open(options.input_filename, "w") as handle:
            handle.write(script)

        codeinfo = datastructures.CodeInfo()
        codeinfo.cmdline_params = ["-in", options.input_filename, *settings.get("additional_cmdline_params", [])]
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.stdout_name = options.output_filename

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = restart.get("local_copy_list", [])
        calcinfo.remote_copy_list = restart.get("remote_copy_list", [])
        calcinfo.remote_symlink_list = restart.get("remote_symlink_list", [])
        calcinfo.retrieve_temporary_list = restart.get("retrieve_temporary_list", [])
        calcinfo.retrieve_list = [
            options.output_filename,
            options.variables_filename,
            options.trajectory_filename,
            *restart.get("retrieve_list", []),
            *settings.get("additional_retrieve_list", []),
        ]
        return calcinfo

    def input_script(self, parameters: dict, species: list[str], read_restart: str | None) -> str:
        """The LAMMPS script: aiida-lammps' blocks, with the potential block written by the potential node."""
        options = self.inputs.metadata.options
        potential_parameters = parameters.get("potential", {})
        potential_block = inputfile.generate_header("Start of Potential information")
        potential_block += "\n".join(self.inputs.potential.lammps_commands(species)) + "\n"
        for keyword, command in (("neighbor", "neighbor"), ("neighbor_modify", "neigh_modify")):
            if keyword in potential_parameters:
                potential_block += f"{command} {inputfile.join_keywords(potential_parameters[keyword])}\n"
        potential_block += inputfile.generate_header("End of Potential information")

        structure_block, groups = inputfile.write_structure_block(
            parameters_structure=parameters.get("structure", {}),
            structure=self.inputs.structure,
            structure_filename=options.structure_filename,
        )
        if read_restart is not None:
            structure_block = inputfile.write_read_restart_block(restart_filename=read_restart)
        thermo_block, fixed_thermo = inputfile.write_thermo_block(
            parameters_thermo=parameters.get("thermo", {}), parameters_compute=parameters.get("compute", {})
        )
        if "minimize" in parameters:
            run_block = inputfile.write_minimize_block(parameters_minimize=parameters["minimize"])
            max_steps = parameters["minimize"].get("max_iterations", 1000)
        else:
            run_block = inputfile.write_md_block(parameters_md=parameters["md"])
            max_steps = parameters["md"].get("max_number_steps", 100)
        restart_block = {"final": "", "intermediate": ""}
        if "restart" in parameters:
            # intermediate files carry their step in the name (LAMMPS replaces '*'), so a continuation knows it
            for block, filename in (
                ("final", options.restart_filename),
                ("intermediate", f"{options.restart_filename}.*"),
            ):
                restart_block[block] = inputfile.write_restart_block(
                    parameters_restart=parameters["restart"], restart_filename=filename, max_number_steps=max_steps
                )[block]
        fix_block = (
            inputfile.write_fix_block(parameters_fix=parameters["fix"], group_names=groups)
            if "fix" in parameters
            else ""
        )
        compute_block = (
            inputfile.write_compute_block(parameters_compute=parameters["compute"], group_names=groups)
            if "compute" in parameters
            else ""
        )
        dump_block = inputfile.write_dump_block(
            parameters_dump=parameters.get("dump", {}),
            parameters_compute=parameters.get("compute", {}),
            trajectory_filename=options.trajectory_filename,
            atom_style="atomic",
            kind_symbols=species,
        )
        return (
            inputfile.write_control_block(parameters_control=parameters.get("control", {}))
            + structure_block
            + potential_block
            + fix_block
            + compute_block
            + thermo_block
            + dump_block
            + restart_block["intermediate"]
            + run_block
            + inputfile.write_final_variables_block(fixed_thermo=fixed_thermo, final_file=options.variables_filename)
            + restart_block["final"]
        )


class MdParser(LammpsBaseParser):
    """aiida-lammps' parser, preceded by a blow-up check (350, or 351 for lost atoms, with the reason) and a check
    that the run reached its end (400 if not, with the last intermediate restart file as ``restartfile``)."""

    def parse(self, **kwargs):
        try:
            retrieved = self.retrieved
        except Exception:  # noqa: BLE001
            return self.exit_codes.ERROR_NO_RETRIEVED_FOLDER
        output_name = self.node.get_option("output_filename")
        names = retrieved.base.repository.list_object_names()
        text = retrieved.base.repository.get_object_content(output_name) if output_name in names else None
        if text is not None:
            settings = self.node.inputs.settings.get_dict() if "settings" in self.node.inputs else {}
            limit = float(settings.get("max_temperature", DEFAULT_MAX_TEMPERATURE))
            reason = detect_instability(text, limit)
            if reason and any(marker in reason for marker in LOST_ATOMS_ERRORS):
                self.logger.error(f"the MD lost atoms: {reason}")
                return self.exit_codes.ERROR_MD_LOST_ATOMS.format(reason=reason)
            if reason:
                self.logger.error(f"the MD blew up: {reason}")
                return self.exit_codes.ERROR_MD_UNSTABLE.format(reason=reason)
        walltime = self.node.process_class.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status
        if self.node.exit_status == walltime or (text is not None and END_OF_RUN not in text and "ERROR" not in text):
            return self.cut_short(names, kwargs.get("retrieved_temporary_folder"))
        return super().parse(**kwargs)

    def cut_short(self, names: list[str], temporary_folder: str | None):
        """The run was stopped (walltime): keep its last restart file, if it wrote one, and say so."""
        parameters = self.node.inputs.parameters.get_dict()
        restart = self.parse_restartfile(parameters=parameters, list_of_files=names, temp_folder=temporary_folder)
        self.logger.warning(f"LAMMPS stopped before the end of the run; restart file: {restart or 'none'}")
        return self.exit_codes.ERROR_OUT_OF_WALLTIME
