"""Priors for G's noise z, chosen by `model.noise`.

Most GANs draw z ~ N(0, I); DCGAN's and InfoGAN's original code draw z ~ U(−1, 1). The choice is not
cosmetic: G's first layer sees z beside any codes or labels, so the prior's spread sets how loud the
noise is next to them at the start of training. Each prior also says how to walk between two of its
draws, for interpolation grids (the Gaussian shell wants slerp; the cube is convex, so a line stays in it).
"""

from __future__ import annotations

import torch

from gancli.registry import Registry


class Prior:
    """Draws come from `fn` (torch.randn or torch.rand), then `rescale`; training draws use the device RNG
    (no host round trip), sampling draws a seeded CPU generator (the same images on any device)."""

    fn = staticmethod(torch.randn)

    def rescale(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def draw(self, shape: tuple[int, ...], device=None, generator: torch.Generator | None = None) -> torch.Tensor:
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

    def rescale(self, x):
        return x * 2 - 1

    def path(self, a, b, t):
        return torch.lerp(a, b, t)


def build_prior(name: str) -> Prior:
    return PRIORS.get(name)()


def interpolation_grid(prior: Prior, z_dim: int, rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """rows × cols latents: each row walks from one draw of the noise prior to another."""
    a, b = prior.draw((rows, 1, z_dim), generator=generator), prior.draw((rows, 1, z_dim), generator=generator)
    t = torch.linspace(0, 1, cols).view(1, cols, 1)
    return prior.path(a, b, t).reshape(rows * cols, z_dim)
