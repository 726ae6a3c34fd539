"""DAD-3DNet module behaviour on CPU-sized variants (numerical parity is in test_dad3dnet_parity)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxhead.models import build_model
from jaxhead.models.bifpn import fusion_weights
from jaxhead.models.dad3dnet import DAD3DNet, model_config


def tiny_config(fusion: str = "gated"):
    cfg = model_config()
    cfg.img_size = 64
    cfg.width_multiplier = 0.125
    cfg.stage_depths = (1, 1, 2, 1)
    cfg.num_filters = 16
    cfg.head_hidden = 32
    cfg.fusion = fusion
    return cfg


def forward(model, x):
    return nnx.jit(lambda m, img: m(img))(model, x)


@pytest.mark.parametrize("fusion", ["gated", "inception"])
def test_shapes_and_ranges(fusion):
    import ml_collections

    model = build_model(ml_collections.ConfigDict(dict(model=tiny_config(fusion))), rngs=nnx.Rngs(0))
    model.eval()
    out = forward(model, jnp.asarray(np.random.default_rng(0).normal(size=(2, 64, 64, 3)), jnp.float32))
    assert out["heatmap_logits"].shape == (2, 16, 16, 68)
    assert out["params_3dmm"].shape == (2, 413)
    assert out["landmarks"].shape == (2, 68, 2)
    assert out["fusion_out"].shape == (2, 4, 4, 128) and out["enc_stage4"].shape == (2, 2, 2, 256)
    assert float(jnp.abs(out["params_3dmm"][:, :403]).max()) <= 3.0
    assert float(out["landmarks"].min()) >= 0.0
    np.testing.assert_allclose(out["params_3dmm"][:, 403:], out["pose_head_raw"])


def test_train_mode_uses_batch_statistics_and_dropout():
    model = DAD3DNet(tiny_config(), rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 64, 64, 3)), jnp.float32)
    model.eval()
    before = jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))
    e1, e2 = forward(model, x), forward(model, x)
    np.testing.assert_array_equal(e1["params_3dmm"], e2["params_3dmm"])
    model.train()
    t1 = forward(model, x)
    after = nnx.state(model, nnx.BatchStat)
    # Dropout draws a new mask per call; BatchNorm normalises with batch statistics and updates.
    t2 = forward(model, x)
    assert not np.allclose(t1["params_3dmm"], t2["params_3dmm"])
    np.testing.assert_allclose(t1["enc_stage3"], t2["enc_stage3"], rtol=1e-5, atol=1e-5)
    assert not np.allclose(t1["enc_stage3"], e1["enc_stage3"])
    # BiFPN BN keeps (flax momentum) 0.0003 of the old running mean: it becomes ~ the batch mean.
    old = before["bifpn"]["p7"]["bn"]["mean"][...]
    new = np.asarray(after["bifpn"]["p7"]["bn"]["mean"][...])
    assert not np.allclose(old, new)
    stem_old = before["encoder"]["init_block"]["conv"]["bn"]["mean"][...]
    stem_new = np.asarray(after["encoder"]["init_block"]["conv"]["bn"]["mean"][...])
    batch_mean = (stem_new - 0.9 * stem_old) / 0.1  # backbone momentum: torch 0.1
    assert np.abs(batch_mean).max() > 0


def test_gradients_reach_every_parameter():
    model = DAD3DNet(tiny_config(), rngs=nnx.Rngs(0))
    model.train()
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 64, 64, 3)), jnp.float32)

    def loss(m):
        out = m(x)
        return (
            jnp.mean(out["heatmap_logits"] ** 2)
            + jnp.mean(out["params_3dmm"] ** 2)
            + jnp.mean(out["landmarks"])
        )

    grads = nnx.jit(nnx.grad(loss))(model)
    leaves = jax.tree.leaves_with_path(nnx.state(grads, nnx.Param))
    assert all(np.all(np.isfinite(g)) for _, g in leaves)
    zero = {jax.tree_util.keystr(p) for p, g in leaves if not np.any(np.asarray(g))}
    # Only p3_out and p5_out of the last BiFPN block are used: its p6_out and p7_out units are dead ends.
    assert zero and all(
        k.startswith("['bifpn']['bifpn'][1]['p6_out']") or k.startswith("['bifpn']['bifpn'][1]['p7_out']")
        for k in zero
    )
    assert len(zero) == 2 * 4  # depthwise, pointwise, BN scale and bias of each


def test_fusion_weights_add_epsilon_after_normalising():
    w = jnp.asarray([[1.0, -1.0, 2.0, 0.5], [3.0, 1.0, 2.0, 0.5]])
    want = np.array([[0.25, 0.0, 0.5, 0.5], [0.75, 1.0, 0.5, 0.5]]) + 1e-4
    np.testing.assert_allclose(fusion_weights(w), want, rtol=1e-6)


def test_bad_inputs():
    cfg = tiny_config()
    model = DAD3DNet(cfg, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="64, 64, 3"):
        model(jnp.zeros((1, 3, 64, 64)))
    cfg.fusion = "attention"
    with pytest.raises(ValueError, match="fusion"):
        DAD3DNet(cfg, rngs=nnx.Rngs(0))
