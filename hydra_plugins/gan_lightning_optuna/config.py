"""``hydra/sweeper=gan_optuna``: the sweeper's settings as a structured config, so a misspelt
key (``hydra.sweeper.n_trails=5``) or a wrong type is refused when Hydra composes, naming it.

Registered under its own name, not ``optuna``: the released hydra-optuna-sweeper registers that
one, and a user may have it installed beside this project. The project's choices for these
settings live in ``conf/hparams_search/optuna.yaml``, which every search starts from.
"""

# No `from __future__ import annotations`: Hydra loads plugin modules without registering them in
# sys.modules, where dataclasses looks up string annotations.
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class GanOptunaSweeperConf:
    _target_: str = "hydra_plugins.gan_lightning_optuna.sweeper.GanOptunaSweeper"
    # The study, shared by every worker given the same name and storage; a journal file or a
    # database URL (gan_lightning/sweeps/optuna_search.py).
    study_name: str | None = None
    storage: str | None = None
    direction: str = "minimize"  # minimize | maximize
    n_trials: int = 20  # trials of the whole study, those already run by any worker included
    n_jobs: int | None = None  # trials asked at once; null: as many as the launcher runs at once
    sampler: str = "tpe"  # tpe | random | cmaes | grid
    seed: int | None = None
    n_startup_trials: int = 10  # random trials before TPE or CMA-ES model the results; finished
    #                              trials before the median pruner stops any
    pruner: str = "median"  # median | hyperband | none
    min_epochs: int = 1  # epochs every trial trains before the pruner may stop it
    # The search space: key -> Hydra override value (choice, range, interval, tag(log, ...)).
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="gan_optuna", node=GanOptunaSweeperConf, provider="gan-lightning"
)
