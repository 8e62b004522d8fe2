"""Scheduler plugins: aiida-core's, made safe against a daemon worker that dies while it submits a job."""
