"""What pruning buys an Optuna search: the same search with the median pruner and without.

    python benchmarks/optuna_pruning.py                        # 12 trials of 4 DCGAN epochs each
    python benchmarks/optuna_pruning.py --trials 16 --epochs 6 --json pruning.json
    python benchmarks/optuna_pruning.py --quick                # smoke test: 3 tiny MLP trials

Both searches are the command a user types (``python -m gan_lightning.train -m
hparams_search=optuna ...``), in turn, with the same seed, model, budget and search space; only
``hydra.sweeper.pruner`` differs (``median`` and ``none``). TPE's first ``n_startup_trials``
proposals are the same in both; after them each search learns from its own history, so the
two explore differently. For each: trials complete, pruned and failed, wall time, the best
final FID, and the sweep summary's table. Each epoch is cut to ``--batches`` batches and the
metrics use ``--samples`` samples, so a search fits in a sitting on a CPU; real MNIST comes
from ``GAN_DATA_DIR`` and the classifier from ``metrics.classifier_ckpt`` as for any run.
Extra arguments go to both searches as overrides (``metrics.every_n_epochs=2``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from gan_lightning.sweeps.optuna_search import open_storage

REPO = Path(__file__).resolve().parents[1]
#: The two searches: name -> hydra.sweeper.pruner.
SEARCHES = {"no pruning": "none", "median pruner": "median"}
FULL = dict(trials=12, epochs=4, model="dcgan", batches=20, samples=500)
QUICK = dict(trials=3, epochs=2, model="mlp", batches=2, samples=20)


def search_overrides(args: argparse.Namespace, pruner: str, sweep_dir: Path) -> list[str]:
    return [
        "-m",
        "hparams_search=optuna",
        f"model={args.model}",
        f"trainer.max_epochs={args.epochs}",
        f"trainer.limit_train_batches={args.batches}",
        f"metrics.num_samples={args.samples}",
        f"metrics.final_num_samples={args.samples}",
        "metrics.max_time_share=null",  # every epoch evaluated in both: the pruner's evidence
        "callbacks.progress_bar=null",
        "callbacks.training_pictures=null",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.study_name={args.model}_{pruner}",
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.pruner={pruner}",
        f"seed={args.seed}",
        *args.overrides,
    ]


def run_search(args: argparse.Namespace, name: str, pruner: str) -> dict[str, Any]:
    sweep_dir = args.out / pruner
    if sweep_dir.exists():
        sys.exit(f"{sweep_dir} exists: give another --out (a finished search is not run over)")
    command = [
        sys.executable,
        "-m",
        "gan_lightning.train",
        *search_overrides(args, pruner, sweep_dir),
    ]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wall = time.perf_counter() - start
    (args.out / f"{pruner}.log").write_text(done.stdout)
    if done.returncode != 0:
        sys.exit(f"the {name} search failed ({args.out / f'{pruner}.log'}):\n{done.stdout[-3000:]}")
    study = optuna.load_study(
        study_name=f"{args.model}_{pruner}",
        storage=open_storage(str(sweep_dir / "optuna.journal")),
    )
    states = [trial.state for trial in study.trials]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    return {
        "search": name,
        "pruner": pruner,
        "trials": len(states),
        "complete": states.count(TrialState.COMPLETE),
        "pruned": states.count(TrialState.PRUNED),
        "failed": states.count(TrialState.FAIL),
        "epochs_trained": sum(_epochs(sweep_dir, t.number) for t in study.trials),
        "wall_time_s": round(wall, 1),
        "best_fid": None if best is None else round(best.value, 2),
        "best_trial": None if best is None else best.number,
        "summary": (sweep_dir / "summary.md").read_text(),
    }


def _epochs(sweep_dir: Path, number: int) -> int:
    result = sweep_dir / f"trial_{number}" / "result.json"
    return json.loads(result.read_text()).get("epochs", 0) if result.is_file() else 0


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def report(rows: list[dict[str, Any]]) -> str:
    head = f"{'search':<15} {'trials':>6} {'complete':>8} {'pruned':>6} {'failed':>6} "
    head += f"{'epochs':>6} {'wall time':>12} {'best FID':>9}"
    lines = [head]
    for row in rows:
        best = "" if row["best_fid"] is None else f"{row['best_fid']:.1f}"
        lines.append(
            f"{row['search']:<15} {row['trials']:>6} {row['complete']:>8} {row['pruned']:>6} "
            f"{row['failed']:>6} {row['epochs_trained']:>6} {minutes(row['wall_time_s']):>12} "
            f"{best:>9}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny MLP searches: a smoke test")
    parser.add_argument("--trials", type=int, help=f"trials per search ({FULL['trials']})")
    parser.add_argument("--epochs", type=int, help=f"epochs per trial ({FULL['epochs']})")
    parser.add_argument("--model", help=f"model option ({FULL['model']})")
    parser.add_argument("--batches", type=int, help=f"batches per epoch ({FULL['batches']})")
    parser.add_argument("--samples", type=int, help=f"samples per evaluation ({FULL['samples']})")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "optuna_pruning")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="more overrides for both searches")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)

    rows = [run_search(args, name, pruner) for name, pruner in SEARCHES.items()]
    for row in rows:
        print(f"\n== {row['search']}: the sweep summary\n\n{row['summary']}")
    print(report(rows))
    if args.json:
        figures = [{k: v for k, v in row.items() if k != "summary"} for row in rows]
        settings = {
            k: getattr(args, k) for k in ("model", "trials", "epochs", "batches", "samples")
        }
        args.json.write_text(json.dumps({"settings": settings, "searches": figures}, indent=2))


if __name__ == "__main__":
    main()
