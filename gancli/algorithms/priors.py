"""Priors for G's noise z (`model.noise`) and for the latent codes an encoder is matched to (`model.prior`,
the adversarial autoencoders).

Most GANs draw z ~ N(0, I); DCGAN's and InfoGAN's original code draw z ~ U(−1, 1). The choice is not
cosmetic: G's first layer sees z beside any codes or labels, so the prior's spread sets how loud the
noise is next to them at the start of training. Each prior also says how to walk between two of its
draws, for interpolation grids (the Gaussian shell wants slerp; the cube is convex, so a line stays in it).
The 2-D priors of the AAE paper (a mixture of 10 Gaussians, a swiss roll) can draw from the part of the
prior a class label names, which is how AAE puts label information into the latent space.
"""

from __future__ import annotations

import math

import torch

from gancli.core.registry import Registry


class Prior:
    """Draws come from `fn` (torch.randn or torch.rand), then `rescale`; training draws use the device RNG
    (no host round trip), sampling draws a seeded CPU generator (the same images on any device)."""

    fn = staticmethod(torch.randn)
    #: parts a label can select (0: the prior has none)
    components = 0
    #: the distribution in words, for exported models' contracts
    about = "N(0, I)"

    def fits(self, dim: int) -> str | None:
        """Why codes of size `dim` cannot follow this prior, or None."""
        return None

    def rescale(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def draw(
        self,
        shape: tuple[int, ...],
        device=None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """labels (shape[0],): the component each draw comes from (priors with `components`; −1: any)."""
        if generator is None:
            return self.rescale(self.fn(shape, device=device))
        return self.rescale(self.fn(shape, generator=generator)).to(device)

    def path(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Points between draws a and b at fractions t (broadcast)."""
        raise NotImplementedError


PRIORS: Registry[type[Prior]] = Registry("noise prior (model.noise)")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: stays on the Gaussian shell where linear paths would cut through low density."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@PRIORS.register("normal")
class Normal(Prior):
    def path(self, a, b, t):
        return slerp(a, b, t)


@PRIORS.register("uniform")
class Uniform(Prior):
    """U(−1, 1) in every coordinate."""

    fn = staticmethod(torch.rand)
    about = "U(-1, 1) in every coordinate"

    def rescale(self, x):
        return x * 2 - 1

    def path(self, a, b, t):
        return torch.lerp(a, b, t)


class _Labelled2D(Prior):
    """A 2-D prior made of `components` parts: a draw picks its part from its label, or at random."""

    components = 10

    def fits(self, dim):
        return (
            None
            if dim == 2
            else (
                f"the {self.name} prior is 2-D (the AAE paper's figures), but the latent "
                f"code has {dim} dimensions: set model.z_dim=2, or use model.prior=normal."
            )
        )

    def part(self, u: torch.Tensor, v: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(n, 2) points of parts k from uniform u and normal v draws (each (n, 2))."""
        raise NotImplementedError

    def draw(self, shape, device=None, generator=None, labels=None):
        n = shape[0]
        if generator is None:
            u, v = torch.rand(n, 2, device=device), torch.randn(n, 2, device=device)
            k = torch.randint(0, self.components, (n,), device=device)
        else:
            u, v = torch.rand(n, 2, generator=generator), torch.randn(n, 2, generator=generator)
            k = torch.randint(0, self.components, (n,), generator=generator)
        u, v, k = u.to(device), v.to(device), k.to(device)
        if labels is not None:
            labels = labels.to(k.device)
            k = torch.where(labels >= 0, labels % self.components, k)
        return self.part(u, v, k).reshape(shape)

    def path(self, a, b, t):
        return torch.lerp(a, b, t)


@PRIORS.register("mixture")
class Mixture(_Labelled2D):
    """10 elongated Gaussians (σ 0.5 along, 0.05 across) centred 1.4 from the origin, one every 36°: the
    mixture of the AAE paper's Figure 4, as the common reproductions (musyoku's) draw it."""

    name = "mixture"
    about = "the AAE paper's mixture of 10 Gaussians in 2-D (gancli.algorithms.priors.Mixture)"
    along, across, shift = 0.5, 0.05, 1.4

    def part(self, u, v, k):
        x, y = v[:, 0] * self.along + self.shift, v[:, 1] * self.across
        angle = k.float() * (2 * math.pi / self.components)
        c, s = torch.cos(angle), torch.sin(angle)
        return torch.stack([c * x - s * y, s * x + c * y], 1)


@PRIORS.register("swiss_roll")
class SwissRoll(_Labelled2D):
    """A swiss roll of 10 consecutive segments, one per label (the AAE paper's Figure 4)."""

    name = "swiss_roll"
    about = "the AAE paper's swiss roll in 2-D (gancli.algorithms.priors.SwissRoll)"

    def part(self, u, v, k):
        r = torch.sqrt((u[:, 0] + k.float()) / self.components) * 3
        return torch.stack([r * torch.cos(4 * math.pi * r / 3), r * torch.sin(4 * math.pi * r / 3)], 1)


def build_prior(name: str) -> Prior:
    return PRIORS.get(name)()


def interpolation_grid(prior: Prior, z_dim: int, rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """rows × cols latents: each row walks from one draw of the noise prior to another."""
    a, b = prior.draw((rows, 1, z_dim), generator=generator), prior.draw((rows, 1, z_dim), generator=generator)
    t = torch.linspace(0, 1, cols).view(1, cols, 1)
    return prior.path(a, b, t).reshape(rows * cols, z_dim)
