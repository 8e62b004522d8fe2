"""Console scripts that run on a remote computer for a CalcJob (no AiiDA here): ``nanoos-train``
(:mod:`.train_potential`) and ``nanoos-train-model`` (:mod:`.train_model`), with what they share in :mod:`.common`."""
