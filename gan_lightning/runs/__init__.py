"""A run's files: atomic checkpoints, what they hold, the run folder, disk space, and faults.

Everything here is about leaving nothing half-written: a checkpoint is plain data written under
a temporary name, a run folder is held by one process at a time and checked before any data is
read (``folder.prepare``, with ``lock``), and a fault mid-run becomes one paragraph that names
the last good checkpoint.
"""
