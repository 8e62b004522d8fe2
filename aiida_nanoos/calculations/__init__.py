"""CalcJobs of aiida-nanoos: work that may run on a remote computer (training a potential, MD with it)."""
