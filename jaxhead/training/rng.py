"""The random streams of a run, each a pure function of the seed (and the step).

The seed's key is split once into two roots: `init` (the model's initialisation) and `step`.
Step k's key is `fold_in(step root, k)`, and the train step splits it into the augmentation
key and the dropout key, which reseeds every RNG stream of the model. No stream can hand out
another's key: NNX streams draw `fold_in(key, count)` from their own key, and the roots are
independent splits. Exact resume relies on the keys depending on nothing but (seed, step).
"""

from __future__ import annotations

import jax
from flax import nnx


def _roots(seed: int) -> tuple[jax.Array, jax.Array]:
    """(init root, step root) of `seed`."""
    init, step = jax.random.split(jax.random.key(seed))
    return init, step


def init_rngs(seed: int) -> nnx.Rngs:
    """The RNG streams that initialise the model."""
    return nnx.Rngs(_roots(seed)[0])


def step_key(seed: int, step: int) -> jax.Array:
    """The key the train step of `step` receives."""
    return jax.random.fold_in(_roots(seed)[1], step)


def split_step_key(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A step's key -> (augmentation key, dropout key)."""
    augment, dropout = jax.random.split(key)
    return augment, dropout
