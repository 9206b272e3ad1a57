"""A run's files: atomic checkpoints, reading them safely, the run folder, disk space, faults.

Entry points: ``folder.prepare`` (a run folder before training: writable, held by this process
alone through ``lock``, half-written files removed, what to resume), ``checkpoints`` (load,
check and rebuild networks from a checkpoint without running its code), ``checkpoint_io``
(atomic writes) and ``faults`` (a fault mid-run as one paragraph naming the last good
checkpoint). Nothing here knows the GAN: it sits below ``gan/``.
"""
