"""The loop's window of train metrics: each step's metrics cross to the host once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from jaxhead import train as train_module
from jaxhead.train import MetricWindow, NonFiniteError


def test_each_step_is_fetched_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[int] = []
    original = jax.device_get

    def counting_device_get(tree):
        fetched.append(len(tree))
        return original(tree)

    monkeypatch.setattr(train_module.jax, "device_get", counting_device_get)
    window = MetricWindow(first_step=1)
    for loss in (1.0, 2.0, 3.0):
        window.add({"loss": jnp.float32(loss), "grad_norm": jnp.float32(0.5), "finite": jnp.bool_(True)})
        window.check()  # e.g. an evaluation or checkpoint boundary after every step
    assert fetched == [1, 1, 1]
    assert window.summary(batch_size=4)["loss"] == 2.0 and fetched == [1, 1, 1, 0]

    window.add({"loss": jnp.float32(jnp.nan), "grad_norm": jnp.float32(0.5), "finite": jnp.bool_(False)})
    with pytest.raises(NonFiniteError, match="at step 4"):
        window.check()
