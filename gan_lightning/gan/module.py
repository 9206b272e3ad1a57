"""The GAN LightningModule: one discriminator step and one generator step per batch.

Manual optimization (Lightning's GAN example shape): each network has its own optimizer and is
stepped inside ``toggled_optimizer`` (the other network frozen, and unfrozen again even when the
step raises) with ``manual_backward`` / ``step``. Everything that varies between GAN recipes
comes in from config: networks, optimizers, the loss (:mod:`gan_lightning.gan.losses`),
regularizers and the tricks (:mod:`gan_lightning.gan.tricks`); the step only composes them.

The module holds the step, its optimizers, sampling and its own checkpoint state. Its networks
come ready to train and checked against the loss and tricks (:mod:`gan_lightning.build`,
:mod:`gan_lightning.gan.compatibility`); a NaN is the guard's business
(:mod:`gan_lightning.gan.guard`), the EMA decay schedule :mod:`gan_lightning.gan.ema`'s, and the
global random streams ride in checkpoints through
:class:`~gan_lightning.callbacks.random_states.RandomStates`.

Lightning's ``global_step`` rises once per optimizer step (twice per batch here), so the module
keeps its own ``d_steps`` / ``g_steps`` counters and they travel in the checkpoint.

Per-step scalars reach ``self.log`` only on the batches whose values Lightning writes (every
``trainer.log_every_n_steps``); their epoch means are summed on the device meanwhile
(:class:`~gan_lightning.gan.running_means.RunningMeans`) and logged once at the epoch end. The tags
stay Lightning's ``<name>_step`` / ``<name>_epoch``; logging never reads a value back to the
host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.optim import Optimizer

from gan_lightning.compat import step_metrics_due
from gan_lightning.errors import CheckpointError, ConfigError
from gan_lightning.gan import ema as ema_lib
from gan_lightning.gan import health
from gan_lightning.gan.augment import AdaptiveTranslation, diff_augment
from gan_lightning.gan.clusters import ImageClusters
from gan_lightning.gan.guard import NonFiniteGuard
from gan_lightning.gan.losses import GANLoss
from gan_lightning.gan.regularizers import DiscriminatorPenalties, LeCam, consistency_penalty
from gan_lightning.gan.running_means import RunningMeans
from gan_lightning.gan.schedules import scale_learning_rates_, training_progress
from gan_lightning.gan.tricks import (
    Tricks,
    add_instance_noise,
    discriminator_targets,
    mode_seeking_loss,
    top_k_indices,
)
from gan_lightning.networks.latents import sample_latents
from gan_lightning.runs.checkpoints import state_mismatch

OptimizerFactory = Callable[..., Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class Fakes(NamedTuple):
    """A batch of fakes, what D judges them against and the latents they were drawn from."""

    images: Tensor
    #: The labels they were drawn for, or their clusters (``model.clusters``); None for an
    #: unconditional G.
    labels: Tensor | None
    latents: Tensor


class GANModule(pl.LightningModule):
    """Trains ``generator`` against ``discriminator`` (which returns logits) under ``loss``.

    Args:
        generator / discriminator: networks built from the ``model`` group, ready to train
            (initialized, D with spectral norm if asked: the builder's job).
        g_optimizer / d_optimizer: partials taking the parameters (``optim.g`` / ``optim.d``).
        loss: the adversarial objective (``loss`` group).
        tricks: validated stabilization tricks (``tricks`` group).
        g_scheduler / d_scheduler: optional LR-scheduler partials, stepped once per epoch.
        guide_classifier: frozen digit classifier for seed 000's classifier-guided G loss.
        run_config: the resolved run config as plain containers; saved in every checkpoint so a
            checkpoint alone rebuilds its networks (``sample``, ``evaluate``).
        num_fixed_samples: size of the fixed-noise batch whose samples are drawn every epoch.
        seed: seeds the fixed noise, independently of the training RNG.
        compile: ``torch.compile`` both networks (``compile=true``).
        channels_last: keep conv weights and image batches in NHWC, which GPU tensor cores
            (and oneDNN on CPU) prefer for convolutions (``channels_last=true``).
        guard: what a NaN/inf loss does: stop (default) or skip the step (``guard`` group).
        temperature: the latent scale of every sample drawn to be looked at or scored (grids,
            metrics, pictures), never of training's (``temperature``; networks/latents.py).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        g_optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        loss: GANLoss,
        tricks: Tricks | None = None,
        g_scheduler: SchedulerFactory | None = None,
        d_scheduler: SchedulerFactory | None = None,
        guide_classifier: nn.Module | None = None,
        run_config: Mapping[str, Any] | None = None,
        num_fixed_samples: int = 64,
        seed: int = 0,
        compile: bool = False,
        channels_last: bool = False,
        guard: NonFiniteGuard | None = None,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.tricks = tricks = tricks or Tricks()
        self.generator = generator
        self.discriminator = discriminator
        self.g_ema = ema_lib.make_ema(generator) if tricks.uses_ema else None
        self.ema_schedule = ema_lib.DecaySchedule(
            tricks.ema_decay, tricks.ema_kimg, tricks.ema_rampup
        )
        self.guide_classifier = guide_classifier
        if guide_classifier is not None:
            guide_classifier.requires_grad_(False).eval()
        self.loss = loss
        self.penalties = DiscriminatorPenalties(
            loss.gradient_penalty_weight, tricks.r1_gamma, tricks.r2_gamma, tricks.reg_every
        )
        # Modules, so their running state (D's output means, the augment probability) travels
        # in the checkpoint with the weights.
        self.lecam = LeCam(tricks.lecam.ema) if tricks.lecam.weight > 0 else None
        ada = tricks.ada
        self.ada = (
            AdaptiveTranslation(ada.target, ada.kimg, ada.interval, ada.max_shift)
            if ada.target is not None
            else None
        )
        clusters = getattr(generator, "clusters", 0)
        self.clusters = (
            ImageClusters(
                clusters, generator.channels * generator.image_size**2, generator.num_classes
            )
            if clusters
            else None
        )
        self.progress = 0.0  # share of the run done, set every batch (gan/schedules.py)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.g_scheduler = g_scheduler
        self.d_scheduler = d_scheduler
        self.run_config = dict(run_config or {})
        self.d_steps = 0
        self.g_steps = 0
        self.compile_networks = compile
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.epoch_means = RunningMeans()
        self.guard = guard or NonFiniteGuard()
        self.skipped_steps = 0
        self.temperature = temperature
        # ((g_steps, device), sampling copy): see sampling_generator
        self._sampling_cache: tuple[tuple[int, torch.device], nn.Module] | None = None

        fixed = torch.Generator().manual_seed(seed)
        fixed_noise = sample_latents(generator, num_fixed_samples, rng=fixed)
        self.register_buffer("fixed_noise", fixed_noise)
        fixed_labels = torch.arange(num_fixed_samples) % max(generator.num_classes, 1)
        self.register_buffer("fixed_labels", fixed_labels)

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        """Fit the clusters (``model.clusters``) to the training images, once, before training.

        A resumed run fits them again and then loads the checkpoint's, which are the same:
        k-means here depends on the images alone.
        """
        if self.clusters is None or stage != "fit":
            return
        datamodule = self.trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "real_images"):
            raise ConfigError(
                "model.clusters fits its clusters to the training images of the run's data "
                "module (the `data` group); trainer.fit was given none"
            )
        images = datamodule.real_images("train")
        labels = datamodule.split_tensors("train")[1] if self.conditional else None
        shares = self.clusters.fit(images, labels)
        for generator in (self.generator, self.g_ema):
            if generator is not None:
                generator.cluster_shares.copy_(shares)

    def configure_model(self) -> None:
        if self.memory_format == torch.channels_last:
            # 4-D weights only: Module.to(memory_format=...) leaves linear layers alone.
            self.generator.to(memory_format=self.memory_format)
            self.discriminator.to(memory_format=self.memory_format)
            if self.g_ema is not None:
                self.g_ema.to(memory_format=self.memory_format)
        if self.compile_networks:
            self.generator.compile()
            self.discriminator.compile()

    def configure_optimizers(self) -> Any:
        opt_g = self.g_optimizer(self.generator.parameters())
        opt_d = self.d_optimizer(self.discriminator.parameters())
        schedulers = [
            factory(opt)
            for factory, opt in ((self.g_scheduler, opt_g), (self.d_scheduler, opt_d))
            if factory is not None
        ]
        return [opt_g, opt_d], schedulers

    def train(self, mode: bool = True) -> GANModule:
        """Keep the frozen networks in eval mode: Lightning switches the whole module each epoch."""
        super().train(mode)
        for frozen in (self.g_ema, self.guide_classifier):
            if frozen is not None:
                frozen.eval()
        return self

    # ------------------------------------------------------------------ sampling
    @property
    def conditional(self) -> bool:
        return self.generator.num_classes > 0

    def sample_labels(self, batch_size: int) -> Tensor | None:
        if not self.conditional:
            return None
        return torch.randint(self.generator.num_classes, (batch_size,), device=self.device)

    def draw_latents(self, batch_size: int) -> Tensor:
        """The latents of one batch of training fakes, from the global (checkpointed) stream."""
        return sample_latents(self.generator, batch_size, device=self.device)

    def sampling_generator(self) -> nn.Module:
        """The generator to sample from: the EMA copy if enabled, with matching BN statistics.

        Recomputing BatchNorm statistics costs a thousand generator passes, and at an epoch end
        the sample grid, the metrics and the pictures all ask for the same weights, so the copy
        is kept until the next generator step. Callers must not modify it.
        """
        key = (self.g_steps, self.device)
        if self._sampling_cache is None or self._sampling_cache[0] != key:
            source = self.g_ema if self.g_ema is not None else self.generator
            sampler = ema_lib.sampling_copy(source, temperature=self.temperature)
            self._sampling_cache = (key, sampler)
        return self._sampling_cache[1]

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, real_labels = self._real_batch(batch)
        batch_size, tricks = real.shape[0], self.tricks
        opt_g, opt_d = self.optimizers()
        g_due = batch_idx % tricks.n_critic == 0
        if tricks.follows_progress:  # only the schedules read it: no work for other runs
            self.progress = training_progress(self.trainer, batch_idx)
        if tricks.lr_decay_to is not None:
            scale_learning_rates_((opt_g, opt_d), tricks.lr_factor_at(self.progress))
        fakes, logs = None, {}
        if batch_idx % tricks.d_every_n_batches == 0:
            if tricks.reuse_fakes and g_due:
                # Drawn with G's graph kept, before D's toggle freezes G: the G step below
                # backpropagates through these same images.
                fakes = self._fakes(batch_size)
            logs |= self._discriminator_step(opt_d, real, real_labels, fakes)
        if g_due:
            for _ in range(tricks.g_steps_per_d):
                logs |= self._generator_step(opt_g, real, real_labels, fakes)
                fakes = None  # only the first G step can reuse them: after it G has changed
        self._log_step(logs, batch_size=batch_size)

    def _discriminator_step(
        self, opt_d: Optimizer, real: Tensor, real_labels: Tensor | None, fakes: Fakes | None
    ) -> dict[str, Tensor]:
        with self.toggled_optimizer(opt_d):
            if fakes is None:
                with torch.no_grad():
                    fakes = self._fakes(real.shape[0])
            # Under autocast G emits bf16/fp16; D's inputs and the penalties stay in real's dtype.
            fake, fake_labels = fakes.images.detach().to(real.dtype), fakes.labels
            real_in, fake_in = self._discriminator_inputs(real), self._discriminator_inputs(fake)
            real_grad, fake_grad = self.penalties.needs_grad(self.d_steps)
            real_in.requires_grad_(real_grad)
            fake_in.requires_grad_(fake_grad)
            # Losses in fp32 whatever the autocast dtype (BCE/MSE would be, hinge/WGAN not).
            real_logits = self.discriminator(real_in, real_labels).float()
            fake_logits = self.discriminator(fake_in, fake_labels).float()
            real_targets, fake_targets = discriminator_targets(self.tricks, real_logits.detach())
            terms = self.loss.discriminator_loss(
                real_logits, fake_logits, real_targets, fake_targets
            )
            terms |= self.penalties(
                self.discriminator,
                self.d_steps,
                real_in,
                real_logits,
                fake_in,
                fake_logits,
                fake_labels,
            )
            if self.lecam is not None:
                terms["lecam"] = self.tricks.lecam.weight * self.lecam(real_logits, fake_logits)
            consistency = self.tricks.consistency
            if consistency.weight > 0:  # bCR: on the reals and on the fakes alike
                sides = ((real_in, real_logits, real_labels), (fake_in, fake_logits, fake_labels))
                terms["consistency"] = consistency.weight * sum(
                    consistency_penalty(self.discriminator, *side, consistency.max_shift)
                    for side in sides
                )
            loss = torch.stack(list(terms.values())).sum()
            grad_norm = self._optimize(opt_d, loss, "discriminator")
        real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
        real_side, fake_side = self.loss.realness(real_logits, fake_logits)
        if self.ada is not None:
            self.ada.observe(torch.sign(real_side), self.d_steps)
        self.d_steps += 1
        logs = self._step_logs("d", loss, terms) | {"health/grad_norm_d": grad_norm}
        logs |= health.discriminator_health(real_side, fake_side)
        if self.ada is not None:
            logs["health/ada_p"] = self.ada.p
        return logs | self.loss.discriminator_outputs(real_logits, fake_logits)

    def _generator_step(
        self, opt_g: Optimizer, real: Tensor, real_labels: Tensor | None, fakes: Fakes | None
    ) -> dict[str, Tensor]:
        with self.toggled_optimizer(opt_g):
            fakes = fakes if fakes is not None else self._fakes(real.shape[0])
            fake, labels = fakes.images, fakes.labels
            fake_logits = self.discriminator(self._discriminator_inputs(fake), labels).float()
            real_logits = None
            if self.loss.pairs_real_and_fake:
                with torch.no_grad():  # a constant for G: only the pairing needs it
                    real_logits = self.discriminator(self._discriminator_inputs(real), real_labels)
                real_logits = real_logits.float()
            best = top_k_indices(fake_logits, self.tricks.top_k.keep_at(self.progress))
            if best is not None:  # top-k: G learns from the fakes D rates most real only
                fake_logits = fake_logits[best]
                real_logits = real_logits[best] if real_logits is not None else None
            terms = {"adversarial": self.loss.generator_loss(fake_logits, real_logits)}
            loss = terms["adversarial"]
            alpha = self.tricks.classifier_guidance.alpha_at(self.current_epoch)
            if self.guide_classifier is not None and alpha > 0:
                digits = labels if self.clusters is None else labels // self.clusters.clusters
                terms["guidance"] = F.cross_entropy(self.guide_classifier(fake), digits)
                loss = (1.0 - alpha) * loss + alpha * terms["guidance"]
            if self.tricks.mode_seeking > 0:
                terms["mode_seeking"] = self.tricks.mode_seeking * mode_seeking_loss(
                    fake, fakes.latents
                )
                loss = loss + terms["mode_seeking"]
            grad_norm = self._optimize(opt_g, loss, "generator")
        self.g_steps += 1
        if self.g_ema is not None:
            decay = self.ema_schedule.at(self.g_steps, real.shape[0])
            ema_lib.update_ema_(self.g_ema, self.generator, decay)
        logs = self._step_logs("g", loss, terms)
        return logs | {
            "health/grad_norm_g": grad_norm,
            "health/sample_spread": health.sample_spread(fake),
        }

    # ------------------------------------------------------------------ step helpers
    def _real_batch(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
        """The real images in the configured memory format, and their labels if D uses them."""
        real, labels = batch
        if self.memory_format == torch.channels_last:
            real = real.contiguous(memory_format=self.memory_format)
        if self.clusters is not None:  # D judges each image against its cluster
            return real, self.clusters.assign(real, labels if self.conditional else None)
        # Projection discriminators judge real images against their true class.
        return real, labels if self.conditional else None

    def _fakes(self, batch_size: int) -> Fakes:
        """Fresh fakes from the live generator (graph kept: G's step backpropagates through),
        and what D judges them against: their labels, or the clusters their latents picked.

        With ``tricks.mode_seeking`` they come in pairs: the second half of the batch repeats
        the first half's labels and clusters (a cluster is z's first entry), so each pair
        differs in its latent alone.
        """
        labels = self.sample_labels(batch_size)
        z = self.draw_latents(batch_size)
        if self.tricks.mode_seeking > 0:
            half = batch_size // 2
            if labels is not None:
                labels[half : 2 * half] = labels[:half]
            if self.clusters is not None:
                z[half : 2 * half, 0] = z[:half, 0]
        images = self.generator(z, labels)
        if self.clusters is not None:
            labels = self.generator.cluster_of(z, labels)
        return Fakes(images, labels, z)

    def _discriminator_inputs(self, images: Tensor) -> Tensor:
        """What D sees of real and fake alike: DiffAugment, adaptive translation, then
        instance noise."""
        images = diff_augment(images, self.tricks.diffaugment)
        if self.ada is not None:
            images = self.ada(images)
        return add_instance_noise(images, self.tricks.instance_noise.std_at(self.d_steps))

    @staticmethod
    def _step_logs(network: str, loss: Tensor, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """``loss/<network>`` and each of its terms under ``loss/<network>/<term>``, detached."""
        logs = {f"loss/{network}/{name}": value.detach() for name, value in terms.items()}
        logs[f"loss/{network}"] = loss.detach()
        return logs

    def _log_step(self, logs: dict[str, Tensor], batch_size: int) -> None:
        self.epoch_means.update(logs, weight=batch_size)
        # A self.log on other batches would cost its full price only to be overwritten unwritten.
        if step_metrics_due(self.trainer):
            step_logs = {f"{name}_step": value for name, value in logs.items()}
            if self.guard.nonfinite == "skip":
                step_logs["guard/skipped_steps"] = float(self.skipped_steps)
            self.log_dict(step_logs, on_step=True, on_epoch=False, batch_size=batch_size)

    def _log_epoch_means(self) -> None:
        means = self.epoch_means.compute()
        # sync_dist: under DDP the epoch means are averaged over ranks (one all-reduce per epoch).
        epoch_logs = {f"{name}_epoch": value for name, value in means.items()}
        self.log_dict(epoch_logs, on_epoch=True, sync_dist=True)
        self.epoch_means.reset()
        if "health/sample_spread" in means:  # one host read per epoch
            collapsed = health.collapse_message(
                float(means["health/sample_spread"]), self.current_epoch
            )
            if collapsed:
                rank_zero_warn(collapsed)

    def _optimize(self, optimizer: Optimizer, loss: Tensor, network: str) -> Tensor:
        """Backward and step; returns the gradient norm that was applied (0 if skipped)."""
        optimizer.zero_grad(set_to_none=True)
        # A host sync per step on GPU; guard.check_every_step=false leaves it to the epoch end.
        if self.guard.check_every_step and not torch.isfinite(loss):
            problem = f"The {network} loss is {loss.item()} in epoch {self.current_epoch}"
            self.skipped_steps = self.guard.skip_or_stop(
                f"{problem}, {self._steps()}", self.skipped_steps, self.trainer
            )
            return torch.zeros((), device=loss.device)
        self.manual_backward(loss)
        grad_norm = health.gradient_norm(optimizer)
        optimizer.step()
        return grad_norm

    def _steps(self) -> str:
        return f"after {self.d_steps} D and {self.g_steps} G steps"

    def on_train_epoch_end(self) -> None:
        # Lightning calls this before ModelCheckpoint, so diverged weights never reach last.ckpt.
        networks = {"generator": self.generator, "discriminator": self.discriminator}
        if self.g_ema is not None:
            networks["g_ema"] = self.g_ema
        self.guard.check_weights(networks, self.current_epoch, self._steps(), self.trainer)
        self._log_epoch_means()
        schedulers = self.lr_schedulers() or []
        # Lightning hands back a lone scheduler unwrapped.
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["run_config"] = self.run_config
        checkpoint["gan_counters"] = {
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "skipped_steps": self.skipped_steps,
        }
        checkpoint["epoch_means"] = self.epoch_means.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check the weights fit before Lightning loads them, and take back the counters.

        Lightning's own strict load would list every missing key; one line per kind of mismatch
        tells the user which checkpoint does not fit which network.
        """
        problems = state_mismatch(self.state_dict(), checkpoint["state_dict"])
        if problems:
            raise CheckpointError(
                f"the checkpoint does not fit this {self.run_config.get('model', {}).get('name')} "
                f"GAN: {problems}. It was made with a different architecture or config."
            )
        self._sampling_cache = None
        counters = checkpoint.get("gan_counters", {})
        self.d_steps = counters.get("d_steps", 0)
        self.g_steps = counters.get("g_steps", 0)
        self.skipped_steps = counters.get("skipped_steps", 0)
        if "epoch_means" in checkpoint:
            self.epoch_means.load_state_dict(checkpoint["epoch_means"])

    def on_fit_start(self) -> None:
        """Warn of networks left in eval mode, as Lightning would if it could tell them apart.

        Lightning's own check counts every module, so it fired in every run for the averaged
        generator and the guiding classifier, frozen on purpose (``train``); it is silenced
        (``build.silence_known_lightning_warnings``) and this one looks at what trains.
        """
        for name in ("generator", "discriminator"):
            frozen = [part for part, m in getattr(self, name).named_modules() if not m.training]
            if frozen:
                rank_zero_warn(
                    f"{len(frozen)} module(s) of the {name} are in eval mode at the start of "
                    f"training (the first: {frozen[0] or type(getattr(self, name)).__name__}), "
                    "so its BatchNorm and Dropout behave as when sampling. Leave a network's "
                    "mode to Lightning, or call .train() on it before fit."
                )

    def on_train_start(self) -> None:
        self.epoch_means.to(self.device)
