"""Sweeps: what is knowable before the first job, what each job records, and the summary.

Entry points: ``preflight`` (the checks ``hydra_callbacks.RunFolderCheck`` runs before a sweep),
``jobs`` (each job's ``result.json``), ``summary`` (the table a sweep ends with), ``objective``
(the metric a sweep optimizes and its direction) and the ``optuna_*`` modules the Optuna sweeper
in ``hydra_plugins/gan_lightning_optuna`` is made of. Optuna itself is imported only when a
search runs (the ``sweeps`` extra).
"""
