"""Our Hydra sweeper on Optuna 5 (``hparams_search=optuna``): :class:`GanOptunaSweeper` in
``sweeper.py``, its settings registered as ``hydra/sweeper=gan_optuna`` in ``config.py``.

Hydra instantiates sweepers only from the ``hydra_plugins`` namespace package and imports every
module in it at start-up, for every command: no module here imports Optuna at import time, so
the commands work, and start fast, without the ``sweeps`` extra.
"""
