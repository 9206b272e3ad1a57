"""The physical yardstick: FLOPs of one GAN step and the machine's matmul peak.

Images per second only say which loop is faster; dividing the achieved FLOP rate by what the
hardware reaches on its best-case kernel (a large square matmul) says how much faster any loop
could still get.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from timing import clock


def step_flops(step: Callable[[torch.Tensor], None], real: torch.Tensor) -> int:
    """FLOPs of one call of ``step(real)``: forward and backward passes of D and G.

    The counter sees matmuls and convolutions only; elementwise work (activations, Adam) is
    memory-bound and not what a peak FLOP rate measures.
    """
    with FlopCounterMode(display=False) as counter:
        step(real)
    return counter.get_total_flops()


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 10) -> float:
    """Best GFLOP/s of ``size x size`` matmuls: the rate a perfectly fed kernel reaches."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    # More products per timing on fast devices, so the clock's resolution does not matter.
    per_timing = 20 if device.type == "cuda" else 1
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = clock(device)
        for _ in range(per_timing):
            torch.mm(a, b)
        best = min(best, (clock(device) - start) / per_timing)
    return 2 * size**3 / best / 1e9


def peak_table(device: torch.device, size: int, repeats: int = 10) -> dict[str, float]:
    """Matmul peaks (GFLOP/s) for the dtypes a precision setting computes in."""
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if device.type == "cuda":
        dtypes["fp16"] = torch.float16
    return {name: matmul_peak(device, dtype, size, repeats) for name, dtype in dtypes.items()}


#: which matmul peak bounds each ``trainer.precision``
PEAK_FOR_PRECISION = {"32-true": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}
