"""Network architectures. `generator.arch` / `discriminator.arch` pick a registered builder.

Builders take (spec, z_dim=..., **their config keys) and return an nn.Module. Generators map
(B, z_dim) → (B, *spec.shape); discriminators map (B, *spec.shape) → logits (B,).
"""

from gancli.nets.registry import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from gancli.nets import dcgan, mlp  # noqa: F401  (registration)

__all__ = ["GENERATORS", "DISCRIMINATORS", "build_generator", "build_discriminator"]
