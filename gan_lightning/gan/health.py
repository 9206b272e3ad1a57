"""Training-health scalars: what tells a stalling GAN from a learning one, at no host sync.

Every value is a 0-d tensor left on the device; the module sums them into its epoch means,
so TensorBoard gets one point per epoch (and one per logged step) under ``health/``:

* ``r_t``: E[sign(D(real))] (D's output less its undecided value, or for the relativistic loss
  less the paired fake's), StyleGAN2-ADA's overfitting heuristic. Near 1, D is
  sure of every training image: it has memorized them (the plateau with falling recall).
* ``d_acc_real`` / ``d_acc_fake``: the share of reals and fakes D classifies correctly. Both
  near 1 for long: D wins and G's gradient fades; both near 0.5: a balanced game.
* ``grad_norm_d`` / ``grad_norm_g``: the networks' gradient norms (before the step). A G norm
  that collapses towards 0 while D's accuracy stays high is a G that no longer learns.
* ``sample_spread``: the per-pixel standard deviation of a batch of fakes, averaged. Near 0,
  every latent draws the same image: the generator has collapsed to one image.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim import Optimizer

#: Below this ``sample_spread`` (pixels in [-1, 1]) all fakes of a batch are the same image.
COLLAPSED_SPREAD = 0.01


def discriminator_health(real_side: Tensor, fake_side: Tensor) -> dict[str, Tensor]:
    """From D's verdicts (``GANLoss.realness``: above 0 means judged real)."""
    return {
        "health/r_t": torch.sign(real_side).mean(),
        "health/d_acc_real": (real_side > 0).float().mean(),
        "health/d_acc_fake": (fake_side < 0).float().mean(),
    }


def gradient_norm(optimizer: Optimizer) -> Tensor:
    """The 2-norm of all gradients the optimizer is about to apply (one fused kernel)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:  # on the parameters' device: the epoch means stack it with the other scalars
        return torch.zeros((), device=params[0].device)
    return torch.nn.utils.get_total_norm(grads)


def sample_spread(fakes: Tensor) -> Tensor:
    """Per-pixel standard deviation over the batch, averaged over pixels: 0 for one image."""
    if fakes.shape[0] < 2:
        return torch.zeros((), device=fakes.device)
    return fakes.detach().float().std(dim=0).mean()


def collapse_message(spread: float, epoch: int) -> str | None:
    """A warning when one epoch's fakes were all the same image, else None."""
    if spread >= COLLAPSED_SPREAD:
        return None
    return (
        f"The generator has collapsed to one image in epoch {epoch}: every latent draws the "
        f"same picture (health/sample_spread={spread:.4f}, below {COLLAPSED_SPREAD}). It rarely "
        "recovers; restart with a lower learning rate, tricks.top_k, tricks.lecam or "
        "tricks.ada (docs/troubleshooting.md reads the health/ scalars)."
    )
