"""Network architectures. `generator.arch` / `discriminator.arch` pick a registered builder.

Builders receive the `Field` of the sample they make or judge. Generators map (B, z_dim) →
(B, *field.shape). Discriminator archs are bodies (sample → features); `build_discriminator` puts them
inside a `critic.Critic`, which owns the output and auxiliary heads.
"""

from gancli.nets import dcgan, mlp  # noqa: F401  (registration)
from gancli.nets.builders import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator

__all__ = ["GENERATORS", "DISCRIMINATORS", "build_generator", "build_discriminator"]
