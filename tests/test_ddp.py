"""Several devices in one run (``trainer=ddp``): per-rank data shards and a real 2-process run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from reliability_helpers import run_cli

from gan_lightning.data.datamodule import EpochBatchSampler
from gan_lightning.runs.checkpoints import load_checkpoint


def shards(num_items: int, world_size: int, epoch: int, **kwargs) -> list[list[int]]:
    """Every rank's indices of one epoch, from fresh samplers (as a resumed run builds them)."""
    result = []
    for rank in range(world_size):
        sampler = EpochBatchSampler(
            num_items, 8, shuffle=True, seed=3, num_replicas=world_size, rank=rank, **kwargs
        )
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) and all(len(b) == 8 for b in batches)
        result.append(torch.cat(batches).tolist())
    return result


def test_ranks_get_disjoint_seeded_shards_of_one_permutation() -> None:
    ranks = shards(100, 3, epoch=2, drop_last=True)  # 100 // 24 = 4 steps of 3 x 8 images
    assert [len(r) for r in ranks] == [32, 32, 32]
    assert len(set().union(*ranks)) == 96  # disjoint
    assert shards(100, 3, epoch=2, drop_last=True) == ranks  # a pure function: resumable
    assert shards(100, 3, epoch=3, drop_last=True) != ranks  # reshuffled every epoch
    # Together the ranks see the single-device epoch's images (its first 96 of the order).
    single = EpochBatchSampler(100, 24, shuffle=True, drop_last=True, seed=3)
    single.set_epoch(2)
    assert sorted(sum(ranks, [])) == sorted(torch.cat(list(single)).tolist())


def test_without_drop_last_every_rank_gets_the_same_number_of_full_batches() -> None:
    ranks = shards(100, 3, epoch=0, drop_last=False)  # ceil(100 / 24) = 5 steps
    assert [len(r) for r in ranks] == [40, 40, 40]
    assert set().union(*ranks) == set(range(100))  # every image, a few of them twice


def test_a_rank_outside_the_world_is_refused() -> None:
    with pytest.raises(ValueError, match="rank=2 must be in"):
        EpochBatchSampler(10, 2, shuffle=True, drop_last=True, num_replicas=2, rank=2)


def rank_records(run_dir: Path) -> list[dict]:
    return [json.loads((run_dir / f"rank_{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_two_cpu_processes_train_one_model_on_disjoint_data_and_resume(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    run_dir = tmp_path / "run"
    common = [
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "data.batch_size=16",
        "+callbacks.rank_record._target_=sweep_helpers.RankRecord",
        f"hydra.run.dir={run_dir}",
    ]
    first = run_cli(common, tiny_mnist_root, tmp_path)
    assert first.returncode == 0, first.stdout[-5000:]
    zero, one = rank_records(run_dir)
    assert (zero["world_size"], zero["sampler"], zero["sampler_rank"]) == (
        2,
        "EpochBatchSampler",  # ours, not Lightning's distributed wrapper
        0,
    )
    assert one["sampler_rank"] == 1
    assert zero["weights"] == one["weights"]  # gradients all-reduced: one model
    indices = [set(record["epochs"]["0"]["indices"]) for record in (zero, one)]
    assert len(indices[0]) == 256 // 32 * 16 and not indices[0] & indices[1]
    assert zero["epochs"]["0"]["rng"] != one["epochs"]["0"]["rng"]  # each rank its own noise
    # Written once, by rank zero: one set of checkpoints, one event file.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "epoch_000.ckpt",
        "last.ckpt",
    ]
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["gan_counters"]["d_steps"] == 8

    resumed = run_cli(
        [*common, "ckpt_path=last", "trainer.max_epochs=2"], tiny_mnist_root, tmp_path
    )
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    zero, one = rank_records(run_dir)
    assert zero["weights"] == one["weights"]
    assert list(zero["epochs"]) == ["1"]  # went on from the second epoch
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["gan_counters"]["d_steps"] == 16
