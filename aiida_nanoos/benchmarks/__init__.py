"""Benchmarks printed by ``aiida-nanoos benchmark NAME``; each module defines a click command ``command``."""
