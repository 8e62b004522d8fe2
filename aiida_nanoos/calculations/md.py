"""``nanoos.md``: LAMMPS MD with a machine-learned potential node, on top of aiida-lammps.

aiida-lammps' ``LammpsPotentialData`` holds one file, and a SNAP potential has two (``.snapcoeff`` and
``.snapparam``). This CalcJob keeps everything else of ``lammps.base`` (parameters schema, input blocks, parser
with thermo, trajectory and final structure) and swaps the potential for a :class:`PotentialData`, whose files are
copied into the working directory and whose own ``pair_style``/``pair_coeff`` lines are written.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import datastructures
from aiida_lammps.calculations.base import LammpsBaseCalculation
from aiida_lammps.parsers import inputfile
from aiida_lammps.parsers.utils import generate_lammps_structure

from aiida_nanoos.data.potential import PotentialData


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


def validate_md_inputs(value: dict, ctx) -> str | None:
    """Refuse a structure with an element the potential lacks, before anything is submitted."""
    message = LammpsBaseCalculation._validate_inputs(value, ctx)
    if message:
        return message
    if "potential" in value and "structure" in value:
        try:
            value["potential"].check_elements(lammps_species(value["structure"]))
        except ValueError as error:
            return str(error)
    return None


class MdCalculation(LammpsBaseCalculation):
    """LAMMPS MD (NVE/NVT/NPT, or minimisation) with a ``nanoos.potential``; outputs as aiida-lammps' ``lammps.base``."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs.pop("potential")
        spec.input("potential", valid_type=PotentialData, help="The machine-learned potential (nanoos.potential).")
        spec.inputs.validator = validate_md_inputs

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
        restart_block = (
            inputfile.write_restart_block(
                parameters_restart=parameters["restart"],
                restart_filename=options.restart_filename,
                max_number_steps=max_steps,
            )
            if "restart" in parameters
            else {"final": "", "intermediate": ""}
        )
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
