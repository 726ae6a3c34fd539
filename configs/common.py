"""The config blocks both models share: `config.train`, `config.eval`, and the one-source image size."""

from __future__ import annotations

import ml_collections


def shared_img_size(config: ml_collections.ConfigDict, size: int, *blocks: str) -> None:
    """Gives `config.<block>.img_size` for every block one `FieldReference`, so that setting any of
    them (a variant, or `--config.model.img_size=160`) sets them all."""
    ref = ml_collections.FieldReference(size)
    for block in blocks:
        config[block].img_size = ref


def train_config(**overrides) -> ml_collections.ConfigDict:
    """`config.train`: step counts, logging, evaluation and checkpoint frequency, precision."""
    values = dict(
        num_epochs=30,
        num_steps=0,  # > 0 overrides num_epochs.
        log_every=50,
        eval_every_steps=0,  # 0: once per epoch, as the official code.
        checkpoint_every=1000,
        keep_checkpoints=3,
        early_stopping_patience=0,  # evaluations without improvement before stopping; 0: never
        compute_dtype="float32",  # or "bfloat16" (f32 parameters and optimizer state).
        matmul_precision="default",
        # XLA CPU backend options, e.g. "--xla_cpu_use_onednn=true" (experiments/benchmarks/RESULTS.md).
        xla_cpu_flags="",
    )
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def eval_config(**overrides) -> ml_collections.ConfigDict:
    """`config.eval`: the periodic and final evaluation."""
    values = dict(
        split="test",
        # Also scored at the end of training, each into eval/<split>.md/.json (e.g. ("test_ood",)).
        extra_splits=(),
        batch_size=128,
        max_batches=0,  # 0: the whole split at every periodic evaluation.
        num_pictures=16,
        baseline_batches=8,  # training batches that fit the mean-prediction baseline
    )
    values.update(overrides)
    return ml_collections.ConfigDict(values)
