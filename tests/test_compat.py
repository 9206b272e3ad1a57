"""Each private attribute behind gan_lightning.compat still exists in the installed libraries.

A failure here after an upgrade names the function in compat.py to adapt.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from tensorboard.compat.proto.event_pb2 import Event
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.aggregation import SumMetric

from gan_lightning import compat


def test_lightning_says_whether_step_metrics_are_due_and_which_step_they_get() -> None:
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert isinstance(compat.step_metrics_due(trainer), bool)
    assert compat.logged_step(trainer) == 0


def test_a_summary_writer_hands_out_its_event_writer(tmp_path: Path) -> None:
    writer = SummaryWriter(log_dir=str(tmp_path))
    try:
        compat.event_writer(writer).add_event(Event(step=3))
    finally:
        writer.close()
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_reset_keeps_the_named_state_only() -> None:
    metric = SumMetric()
    metric.update(torch.tensor(2.0))
    metric.add_state("count", torch.tensor(5.0), dist_reduce_fx="sum")
    metric.count += 1
    with compat.reset_keeps_state(metric, "sum_value"):
        metric.reset()
    assert metric.sum_value == 2.0 and metric.count == 5.0
    assert set(metric._defaults) == {"sum_value", "count"}


def test_lerp_all_moves_each_tensor_towards_its_end() -> None:
    targets, ends = [torch.zeros(3), torch.ones(2, 2)], [torch.ones(3), torch.full((2, 2), 3.0)]
    compat.lerp_all_(targets, ends, 0.25)
    torch.testing.assert_close(targets[0], torch.full((3,), 0.25))
    torch.testing.assert_close(targets[1], torch.full((2, 2), 1.5))
