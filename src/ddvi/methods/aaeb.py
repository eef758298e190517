"""AAEB: the adversarial autoencoder (Makhzani et al. 2015), one of the paper's baselines.

A deterministic encoder z = f(x), a decoder trained by reconstruction, and a discriminator D(z)
that tells prior samples from codes; the encoder is trained to fool it, which pushes the
aggregate posterior towards the prior. There is no density for q(z | x) and hence no ELBO.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ddvi.likelihoods import Likelihood
from ddvi.methods.base import Method, StepContext, adam
from ddvi.nets import mlp
from ddvi.posteriors.deterministic import DeterministicPosterior
from ddvi.priors import Prior

Optimizers = dict[str, torch.optim.Optimizer]


class AAEB(Method):
    """Adversarial autoencoder with three Adam optimizers per batch (``ae``, ``disc``, ``gen``).

    1. reconstruction: ``-log p(x | encoder(x))`` (batch mean) on the encoder, decoder and
       likelihood (``ae``);
    2. discriminator: BCE with logits, real = prior samples, fake = detached codes, Gaussian
       instance noise of std ``noise_std(epoch)`` added to both (``disc``);
    3. generator: the encoder fools the discriminator (non-saturating BCE, same input noise)
       (``gen``, encoder only).

    The discriminator is an MLP on z with LeakyReLU(0.2) and ``discriminator_hidden`` widths
    (2 x 1000 in the paper's appendix G) and a logit output. ``lr`` (if given) overrides the
    learning rate passed to :meth:`configure_optimizer` (the paper uses 2e-4 for AAEB).
    """

    name = "aaeb"
    has_elbo = False
    NOISE_STEP = 0.1  # the input noise drops by this much every quarter of the training

    def __init__(self, prior: Prior, likelihood: Likelihood, decoder: nn.Module,
                 posterior: DeterministicPosterior,
                 discriminator_hidden: Sequence[int] = (1000, 1000), noise_start: float = 0.3,
                 lr: float | None = None, *, name: str | None = None):
        super().__init__(prior, likelihood, decoder, posterior, name=name)
        if noise_start < 0:
            raise ValueError(f"noise_start must be >= 0, got {noise_start}")
        self.noise_start, self.lr = noise_start, lr
        self.discriminator = mlp(posterior.latent_dim, discriminator_hidden, 1)

    # ---- optimizers -----------------------------------------------------------------------
    def autoencoder_parameters(self) -> list[nn.Parameter]:
        return [*self.decoder.parameters(), *self.likelihood.parameters(),
                *self.posterior.parameters()]

    def configure_optimizer(self, lr: float) -> Optimizers:
        """{"ae": encoder + decoder + likelihood, "disc": discriminator, "gen": encoder}."""
        lr = self.lr if self.lr is not None else lr
        return {"ae": adam(self.autoencoder_parameters(), lr),
                "disc": adam(self.discriminator.parameters(), lr),
                "gen": adam(self.posterior.parameters(), lr)}

    # ---- schedule ---------------------------------------------------------------------------
    def noise_std(self, epoch: int, epochs: int) -> float:
        """``noise_start`` lowered by 0.1 every quarter of the epochs, floored at 0.

        For 200 epochs and 0.3: 0.3 (epochs 0-49), 0.2 (50-99), 0.1 (100-149), 0 (150-199).
        """
        quarter = min(4 * epoch // max(epochs, 1), 3)
        std = self.noise_start - self.NOISE_STEP * quarter
        return std if std > 1e-9 else 0.0

    # ---- the three phases --------------------------------------------------------------------
    def _noisy(self, z: Tensor, std: float, generator: torch.Generator | None) -> Tensor:
        if std == 0:
            return z
        return z + std * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)

    def reconstruction_step(self, x: Tensor, optimizer: torch.optim.Optimizer) -> Tensor:
        """Phase 1: minimise -log p(x | encoder(x)) (batch mean); returns the detached loss."""
        loss = -self.likelihood.log_prob(x, self.decoder(self.posterior(x))).mean()
        self._step(optimizer, loss)
        return loss.detach()

    def discriminator_loss(self, x: Tensor, std: float,
                           generator: torch.Generator | None = None) -> Tensor:
        """BCE(D(prior sample + noise), 1) + BCE(D(encoder(x).detach() + noise), 0)."""
        with torch.no_grad():
            fake = self.posterior(x)
        real = self.prior.sample(x.shape[0], generator)[0].to(device=fake.device, dtype=fake.dtype)
        lr = self.discriminator(self._noisy(real, std, generator))
        lf = self.discriminator(self._noisy(fake, std, generator))
        return (F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
                + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))

    def discriminator_step(self, x: Tensor, optimizer: torch.optim.Optimizer, std: float,
                           generator: torch.Generator | None = None) -> Tensor:
        """Phase 2: one discriminator update; returns the detached loss."""
        loss = self.discriminator_loss(x, std, generator)
        self._step(optimizer, loss)
        return loss.detach()

    def generator_loss(self, x: Tensor, std: float,
                       generator: torch.Generator | None = None) -> Tensor:
        """Non-saturating generator loss BCE(D(encoder(x) + noise), 1)."""
        logits = self.discriminator(self._noisy(self.posterior(x), std, generator))
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def generator_step(self, x: Tensor, optimizer: torch.optim.Optimizer, std: float,
                       generator: torch.Generator | None = None) -> Tensor:
        """Phase 3: update the encoder (only) to fool the discriminator."""
        loss = self.generator_loss(x, std, generator)
        self._step(optimizer, loss)
        # the backward pass also filled the discriminator's gradients; they belong to no step
        self.discriminator.zero_grad(set_to_none=True)
        return loss.detach()

    def training_step(self, x: Tensor, optimizer: Optimizers, ctx: StepContext) -> dict[str, Tensor]:
        std = self.noise_std(ctx.epoch, ctx.epochs)
        rec = self.reconstruction_step(x, optimizer["ae"])
        disc = self.discriminator_step(x, optimizer["disc"], std, ctx.generator)
        gen = self.generator_step(x, optimizer["gen"], std, ctx.generator)
        return {"loss": rec + disc + gen, "rec": rec, "disc": disc, "gen": gen}

    def elbo_terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        raise ValueError("AAEB has no ELBO: its deterministic encoder has no density q(z | x); "
                         "evaluate it by reconstruction or latent-space metrics instead")
