"""``aiida-nanoos benchmark screening``: throughput of ML-only screening, pure or with provenance stored.

Pure (default): featurisation of generated perovskite candidates plus prediction with uncertainty by the
crystal-graph ensemble (all members) and by MC dropout (logic in :mod:`aiida_nanoos.benchmarks.crystal_graph_harness`).

``--provenance``: the same candidates go through AiiDA on the loaded profile: one ``nanoos.structure_batch`` node
for the batch, the model as a ``nanoos.model`` node, and the ``nanoos.predict_with_uncertainty`` calcfunction (one
process node and one ArrayData output per batch); the rate counts storing every node.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from aiida_nanoos.benchmarks import options


def provenance_benchmark(
    n: int,
    *,
    model_name: str | None = None,
    model_dir: str | None = None,
    n_members: int = 3,
    n_samples: int = 50,
    methods: tuple[str, ...] = ("ensemble", "mc_dropout"),
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Candidates per minute through ``predict_with_uncertainty`` on the loaded profile, storing all nodes."""
    import torch
    from aiida import orm

    from aiida_nanoos.benchmarks.crystal_graph_harness import (
        generate_perovskite_candidates,
        machine_load,
        random_weight_model,
    )
    from aiida_nanoos.data.model import ModelData
    from aiida_nanoos.data.structure_batch import StructureBatchData
    from aiida_nanoos.functions.property_model import predict_with_uncertainty
    from aiida_nanoos.models.cgcnn import CrystalGraphModel

    if threads:
        torch.set_num_threads(threads)
    if model_name:
        node = ModelData.find(model_name)
    else:
        model = CrystalGraphModel.load(model_dir) if model_dir else random_weight_model(n_members, seed)
        node = ModelData.from_model(model, name="screening_benchmark").store()
    load_before = machine_load()
    started = time.perf_counter()
    candidates = generate_perovskite_candidates(n, seed)
    generation_seconds = time.perf_counter() - started
    started = time.perf_counter()
    batch = StructureBatchData(candidates).store()
    batch_seconds = time.perf_counter() - started
    timings: dict[str, Any] = {}
    for method in methods:
        if method not in node.methods:
            continue
        started = time.perf_counter()
        prediction, process = predict_with_uncertainty.run_get_node(
            model=node, structures=batch, settings=orm.Dict({"method": method, "n_samples": n_samples})
        )
        seconds = time.perf_counter() - started
        sigma = prediction.get_array("uncertainty")
        timings[method] = {
            "passes": int(prediction.base.attributes.get("n_samples")),
            "calcfunction_seconds": seconds,
            "candidates_per_minute": 60.0 * n / seconds,
            "with_batch_node_candidates_per_minute": 60.0 * n / (seconds + batch_seconds),
            "process_pk": process.pk,
            "prediction_pk": prediction.pk,
            "finite_uncertainty": bool((sigma == sigma).all()),
            "output_repository_bytes": sum(
                len(prediction.base.repository.get_object_content(name, mode="rb"))
                for name in prediction.base.repository.list_object_names()
            ),
        }
    return {
        "n_candidates": n,
        "model": node.full_name,
        "model_pk": node.pk,
        "n_members": node.n_members,
        "n_samples": n_samples,
        "generation_seconds": generation_seconds,
        "batch_node_seconds": batch_seconds,
        "batch_pk": batch.pk,
        "methods": timings,
        "torch_threads": torch.get_num_threads(),
        "machine_before": load_before,
        "machine_after": machine_load(),
    }


def format_provenance(result: dict[str, Any]) -> str:
    lines = [
        f"screening {result['n_candidates']} candidates with provenance, model {result['model']} "
        f"({result['n_members']} member(s)), {result['torch_threads']} torch thread(s), "
        f"load average {result['machine_before']['load_average_1_5_15']}",
        f"  batch node (StructureBatchData<{result['batch_pk']}>) created and stored in "
        f"{result['batch_node_seconds']:.2f} s",
    ]
    for method, timing in result["methods"].items():
        lines.append(
            f"  {method:<12} {timing['passes']:>3} passes: calcfunction<{timing['process_pk']}> "
            f"{timing['calcfunction_seconds']:.2f} s = {timing['candidates_per_minute']:.0f} candidates/min "
            f"({timing['with_batch_node_candidates_per_minute']:.0f} /min including the batch node)"
        )
    return "\n".join(lines)


@click.command("screening")
@click.option("--n", "n_candidates", default=10000, show_default=True, help="Candidates to screen.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of a saved model (model.pt + model.json); default: a random-weight ensemble.")  # fmt: skip
@click.option("--model-name", default=None, help="With --provenance: a stored nanoos.model (name, name_vN).")
@click.option(
    "--members",
    default=3,
    show_default=True,
    help="Members of the random-weight ensemble (3, as trained by the gnn benchmark).",
)
@click.option("--samples", default=50, show_default=True, help="MC-dropout passes.")
@options.torch_threads
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--provenance",
    is_flag=True,
    help="Run the predict_with_uncertainty calcfunction on the loaded profile (nodes stored) instead of the pure core.",
)
@options.json_output
def command(
    n_candidates: int,
    model_dir: str | None,
    model_name: str | None,
    members: int,
    samples: int,
    threads: int,
    seed: int,
    provenance: bool,
    as_json: bool,
) -> None:
    """Candidates per minute for featurisation + prediction with uncertainty (--provenance: through AiiDA)."""
    if n_candidates < 1:
        raise click.BadParameter("need at least one candidate", param_hint="--n")
    if provenance:
        from aiida_nanoos.cli.utils import load_profile

        load_profile()
        try:
            result = provenance_benchmark(
                n_candidates,
                model_name=model_name,
                model_dir=model_dir,
                n_members=members,
                n_samples=samples,
                seed=seed,
                threads=threads,
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from error
        click.echo(json.dumps(result, indent=2) if as_json else format_provenance(result))
        return
    if model_name:
        raise click.BadParameter("--model-name needs --provenance (a stored model)", param_hint="--model-name")
    from aiida_nanoos.benchmarks.crystal_graph_harness import format_screening, screening_benchmark
    from aiida_nanoos.models.cgcnn import CrystalGraphModel

    model = CrystalGraphModel.load(model_dir) if model_dir else None
    result = screening_benchmark(
        n_candidates, model=model, n_members=members, n_samples=samples, seed=seed, threads=threads
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_screening(result))
