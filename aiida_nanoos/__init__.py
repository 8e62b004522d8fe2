"""aiida-nanoos: autonomous materials design on AiiDA."""

__version__ = "0.1.0"
