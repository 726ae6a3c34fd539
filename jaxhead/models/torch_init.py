"""PyTorch's default parameter initialisers, for models trained from scratch like the originals.

torch.nn.Conv*d / Linear draw weights from kaiming_uniform_(a=sqrt(5)), which is
U(+-1/sqrt(fan_in)), and biases from U(+-1/sqrt(fan_in)). fan_in is the number of inputs
of one output unit; for ConvTranspose2d torch takes it from the weight's dim 1, which
holds the *output* channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

# Kernels in flax layouts (..., in, out): U(+-1/sqrt(fan_in)).
TORCH_DEFAULT_INIT = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
# Transposed-convolution kernels stored as (kh, kw, out, in) (the torch weight (in, out, kh, kw)
# permuted); torch's fan_in of that weight is out * kh * kw, i.e. axis -2 here.
TORCH_CONV_TRANSPOSE_INIT = nnx.initializers.variance_scaling(
    1.0 / 3.0, "fan_in", "uniform", in_axis=-2, out_axis=-1
)


def xavier_uniform(gain: float) -> nnx.Initializer:
    """torch.nn.init.xavier_uniform_: U(+-gain sqrt(6 / (fan_in + fan_out)))."""
    return nnx.initializers.variance_scaling(gain**2, "fan_avg", "uniform")


def torch_bias_init(fan_in: int) -> nnx.Initializer:
    """The default bias of a torch layer with `fan_in` inputs: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init
