"""Calcfunctions: thin provenance wrappers around the pure core in :mod:`aiida_nanoos.ml`."""
