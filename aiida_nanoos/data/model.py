"""``nanoos.model``: a trained property model (crystal-graph network with uncertainty), found by name/version.

The two files of a :class:`aiida_nanoos.models.cgcnn.CrystalGraphModel` (``model.pt`` weights of all ensemble members,
``model.json`` config) live in the node's repository; what one queries on (name, version, target, uncertainty
method, elements, metrics) is stored as attributes. Which data trained a model is a provenance query (the
``nanoos.model.train`` CalcJob that created it), never stored by hand.

torch is imported only when a model is loaded, so listing models stays fast.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aiida import orm

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms

    from aiida_nanoos.models.cgcnn import CrystalGraphModel

#: Repository file names (the same as ``CrystalGraphModel.save`` writes).
WEIGHTS_FILENAME = "model.pt"
CONFIG_FILENAME = "model.json"
METRICS_FILENAME = "metrics.json"
_FULL_NAME = re.compile(r"^(?P<name>.+)_v(?P<version>\d+)$")
#: Loaded models per node UUID (one process loads each model once).
_CACHE: dict[str, CrystalGraphModel] = {}


def _symbols(numbers: Sequence[int]) -> list[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[int(z)] for z in sorted(set(map(int, numbers)))]


def split_full_name(name: str) -> tuple[str, int | None]:
    """``"cgcnn_formation_energy_v1"`` -> ``("cgcnn_formation_energy", 1)``; a plain name -> ``(name, None)``."""
    match = _FULL_NAME.match(name)
    if match is None:
        return name, None
    return match.group("name"), int(match.group("version"))


def next_version(name: str) -> int:
    """1 + the highest stored version of models called ``name`` (1 for a new name)."""
    versions = stored_versions(name)
    return max(versions) + 1 if versions else 1


def stored_versions(name: str) -> list[int]:
    """Versions of the stored models called ``name`` (sorted)."""
    query = orm.QueryBuilder().append(ModelData, filters={"attributes.name": name}, project="attributes.version")
    return sorted({int(v) for v in query.all(flat=True) if v is not None})


class ModelData(orm.Data):
    """A property model: weights + config in the repository, metadata as queryable attributes.

    Attributes: ``name``, ``version``, ``full_name`` (``f"{name}_v{version}"``), ``target`` (the property
    predicted, e.g. ``formation_energy``), ``method`` (default uncertainty method, ``ensemble`` or
    ``mc_dropout``), ``methods`` (all the model supports), ``n_members``, ``extensive``, ``elements`` (symbols
    seen in training), ``metrics`` (MAE, calibration report, training time, n_train/n_validation...),
    ``validation_mae``, ``format_version``.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        config: str | Path | dict | None = None,
        *,
        name: str = "model",
        version: int | None = None,
        metrics: dict | None = None,
        method: str | None = None,
        **kwargs,
    ):
        if weights is None:  # an empty node, e.g. while loading from the database
            super().__init__(**kwargs)
            return
        # every check before the backend node exists, so a refused model leaves nothing behind
        if not name or not isinstance(name, str):
            raise ValueError("a model needs a non-empty name")
        if _FULL_NAME.match(name):
            raise ValueError(f"the name '{name}' ends in _v<N>: give the version separately (version=...)")
        config = config if isinstance(config, dict) else json.loads(Path(config).read_text())
        for key in ("target", "n_members", "architecture", "training_elements"):
            if key not in config:
                raise ValueError(f"the model config lacks '{key}': not a CrystalGraphModel config")
        n_members = int(config["n_members"])
        dropout = float(config["architecture"].get("dropout", 0.0))
        methods = (["ensemble"] if n_members >= 2 else []) + (["mc_dropout"] if dropout > 0 else [])
        method = method or (config.get("info") or {}).get("method") or (methods[0] if methods else None)
        if method not in methods:
            raise ValueError(f"uncertainty method {method!r} is not supported by this model (supports {methods})")
        if version is not None and int(version) < 1:
            raise ValueError("version must be a positive integer")
        super().__init__(**kwargs)
        self._auto_version = version is None
        with Path(weights).open("rb") as handle:
            self.base.repository.put_object_from_filelike(handle, WEIGHTS_FILENAME)
        self.base.repository.put_object_from_filelike(
            io.BytesIO(json.dumps(config, indent=1).encode()), CONFIG_FILENAME
        )
        metrics = dict(metrics or {})
        self.base.attributes.set_many(
            {
                "name": name,
                "version": int(version) if version is not None else next_version(name),
                "target": config["target"],
                "method": method,
                "methods": methods,
                "n_members": n_members,
                "extensive": bool(config.get("extensive", True)),
                "elements": _symbols(config["training_elements"]),
                "metrics": metrics,
                "validation_mae": config.get("validation_mae"),
                "format_version": config.get("format_version"),
            }
        )

    def store(self, *args, **kwargs):
        """Store; an automatic version is recomputed so two models stored one after the other never share it."""
        if not self.is_stored and getattr(self, "_auto_version", False):
            self.base.attributes.set("version", next_version(self.name))
        return super().store(*args, **kwargs)

    # ------------------------------------------------------------------------------------------------------------------
    # Construction
    # ------------------------------------------------------------------------------------------------------------------

    @classmethod
    def from_model(
        cls, model: CrystalGraphModel, *, name: str, version: int | None = None, metrics: dict | None = None
    ) -> ModelData:
        """An unstored node holding an in-memory model (written through its own ``save``)."""
        with tempfile.TemporaryDirectory(prefix="nanoos-model-") as folder:
            weights, _ = model.save(folder)
            node = cls(weights, model.config(), name=name, version=version, metrics=metrics)
        _CACHE[node.uuid] = model
        return node

    @classmethod
    def from_directory(
        cls, directory: str | Path, *, name: str, version: int | None = None, metrics: dict | None = None
    ) -> ModelData:
        """The model saved in ``directory`` (``model.pt`` + ``model.json``); ``metrics`` default to its
        ``metrics.json`` (what ``nanoos-train-model`` writes)."""
        directory = Path(directory)
        for filename in (WEIGHTS_FILENAME, CONFIG_FILENAME):
            if not (directory / filename).is_file():
                raise ValueError(f"{directory} holds no {filename}: not a saved model")
        if metrics is None and (directory / METRICS_FILENAME).is_file():
            metrics = json.loads((directory / METRICS_FILENAME).read_text())
        return cls(
            directory / WEIGHTS_FILENAME, directory / CONFIG_FILENAME, name=name, version=version, metrics=metrics
        )

    # ------------------------------------------------------------------------------------------------------------------
    # Attributes
    # ------------------------------------------------------------------------------------------------------------------

    name = property(lambda self: self.base.attributes.get("name"))
    version = property(lambda self: self.base.attributes.get("version"))
    target = property(lambda self: self.base.attributes.get("target"))
    method = property(lambda self: self.base.attributes.get("method"))
    methods = property(lambda self: list(self.base.attributes.get("methods", [])))
    n_members = property(lambda self: self.base.attributes.get("n_members"))
    extensive = property(lambda self: self.base.attributes.get("extensive"))
    elements = property(lambda self: list(self.base.attributes.get("elements", [])))
    metrics = property(lambda self: self.base.attributes.get("metrics", {}) or {})
    validation_mae = property(lambda self: self.base.attributes.get("validation_mae"))

    @property
    def full_name(self) -> str:
        """``f"{name}_v{version}"``, e.g. ``cgcnn_formation_energy_v1``."""
        return f"{self.name}_v{self.version}"

    @property
    def config(self) -> dict:
        """The model config (architecture, graph settings, normaliser, baseline, recalibration, info)."""
        return json.loads(self.base.repository.get_object_content(CONFIG_FILENAME))

    # ------------------------------------------------------------------------------------------------------------------
    # Finding models
    # ------------------------------------------------------------------------------------------------------------------

    @classmethod
    def available(cls) -> list[str]:
        """Full names of all stored models, sorted."""
        query = orm.QueryBuilder().append(cls, project=["attributes.name", "attributes.version"])
        return sorted({f"{name}_v{version}" for name, version in query.all()})

    @classmethod
    def find(cls, name: str, version: int | None = None) -> ModelData:
        """The stored model ``name`` (latest version unless ``version``); accepts ``"name_v2"`` too.

        With several nodes of the same name and version (e.g. retrained with an explicit version), the newest.
        """
        names = [(name, version)]
        base, parsed = split_full_name(name)
        if parsed is not None and version is None:
            names.insert(0, (base, parsed))  # "x_v2": version 2 of x (or a model really called x_v2, tried next)
        for candidate, wanted in names:
            filters: dict = {"attributes.name": candidate}
            if wanted is not None:
                filters["attributes.version"] = int(wanted)
            query = orm.QueryBuilder().append(cls, filters=filters, project="*")
            query.order_by({cls: [{"attributes.version": {"order": "desc", "cast": "i"}}, {"ctime": "desc"}]})
            query.limit(1)
            found = query.all(flat=True)
            if found:
                return found[0]
        available = cls.available()
        wanted = f"{name} version {version}" if version is not None else name
        raise ValueError(
            f"no model '{wanted}' stored; available: {', '.join(available) if available else 'none (train one first)'}"
        )

    # ------------------------------------------------------------------------------------------------------------------
    # Using the model
    # ------------------------------------------------------------------------------------------------------------------

    def load_model(self) -> CrystalGraphModel:
        """The :class:`CrystalGraphModel` (loaded once per node and process)."""
        cached = _CACHE.get(self.uuid)
        if cached is not None:
            return cached
        from aiida_nanoos.models.cgcnn import CrystalGraphModel

        with tempfile.TemporaryDirectory(prefix="nanoos-model-") as folder:
            weights = Path(folder) / WEIGHTS_FILENAME
            weights.write_bytes(self.base.repository.get_object_content(WEIGHTS_FILENAME, mode="rb"))
            model = CrystalGraphModel.load(weights, self.config)
        _CACHE[self.uuid] = model
        return model

    def write_files(self, directory: str | Path) -> tuple[Path, Path]:
        """Copy ``model.pt`` and ``model.json`` into ``directory`` (loadable by ``CrystalGraphModel.load``)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for filename in (WEIGHTS_FILENAME, CONFIG_FILENAME):
            path = directory / filename
            path.write_bytes(self.base.repository.get_object_content(filename, mode="rb"))
            paths.append(path)
        return paths[0], paths[1]

    def check_target(self, target: str | None) -> None:
        """Refuse a request for a property the model was not trained on (naming the one it predicts)."""
        if target is not None and target != self.target:
            raise ValueError(f"model `{self.full_name}` predicts '{self.target}', not '{target}'")

    def check_method(self, method: str | None) -> str:
        """The uncertainty method to use (the model's default when None); refuses one it cannot run."""
        method = method or self.method
        if method not in self.methods:
            raise ValueError(
                f"model `{self.full_name}` supports the uncertainty method(s) {self.methods}, not {method!r}"
            )
        return method

    def check_structures(self, atoms_list: Sequence[Atoms], allow_unseen: bool = True) -> None:
        """Refuse an empty batch or a structure holding an element without features (named in the error).

        With ``allow_unseen=False`` also refuse elements absent from the training data (the model falls back on
        its composition baseline for those; the uncertainty should, but need not, show it).
        """
        from ase.data import atomic_numbers

        from aiida_nanoos.models.graph import check_structures

        try:
            check_structures(atoms_list)
        except ValueError as error:
            raise ValueError(f"model `{self.full_name}`: {error}") from error
        if not allow_unseen:
            present = {s for atoms in atoms_list for s in atoms.get_chemical_symbols()}
            unseen = sorted(present - set(self.elements), key=lambda s: atomic_numbers[s])
            if unseen:
                raise ValueError(
                    f"model `{self.full_name}` was trained on {', '.join(self.elements)}; not on {', '.join(unseen)}"
                )

    def unseen_elements(self, atoms_list: Sequence[Atoms]) -> list[str]:
        """Elements of ``atoms_list`` absent from the training data."""
        present = {s for atoms in atoms_list for s in atoms.get_chemical_symbols()}
        return sorted(present - set(self.elements))

    def training_calculations(self) -> list[orm.CalcJobNode]:
        """The training CalcJob that created this model (empty for a model stored from memory)."""
        creator = self.creator
        return [creator] if isinstance(creator, orm.CalcJobNode) else []


__all__ = ["ModelData", "next_version", "split_full_name", "stored_versions"]
