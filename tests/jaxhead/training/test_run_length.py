"""An epoch is one pass over the whole training mixture (TRG★: ARKitFace + 300W-LP), as in the
official TRG code, whose ConcatDataset-like MultipleDataset has the summed length: the step decay
and the total length of an epoch-based recipe land at the right step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from configs import trg as trg_configs
from jaxhead.train import run_length
from jaxhead.training.data import prepare
from jaxhead.training.optimizer import make_schedule


def test_an_epoch_counts_every_dataset_of_the_mixture(synthetic_tiny: Path) -> None:
    config = trg_configs.get_config("smoke")
    config.data.data_dir = str(synthetic_tiny)
    config.data.extra_datasets = ("synthetic_heads/tiny",)  # a second 64-example training set
    info = prepare(config)
    assert info.num_examples["train"] == 64 and info.num_examples["test"] == 32
    assert info.num_train == 128

    # The official recipe: 30 epochs, lr x 0.1 after epoch 20.
    config.data.batch_size = 16
    config.train.update(num_steps=0, num_epochs=30, eval_every_steps=0)
    config.optim.update(schedule="step", step_epochs=(20,), step_factor=0.1, learning_rate=1e-4)
    steps_per_epoch, total_steps, eval_every = run_length(config, info.num_train)
    assert (steps_per_epoch, total_steps, eval_every) == (8, 240, 8)
    schedule = make_schedule(config.optim, steps_per_epoch, total_steps)
    np.testing.assert_allclose([schedule(159), schedule(160)], [1e-4, 1e-5], rtol=1e-6)


def test_evaluation_alone_builds_only_the_evaluated_dataset(synthetic_tiny: Path) -> None:
    config = trg_configs.get_config("smoke")
    config.data.data_dir = str(synthetic_tiny)
    config.data.extra_datasets = ("w300lp",)  # not built in synthetic_tiny, and not needed
    info = prepare(config, splits=("test",))
    assert info.num_examples["test"] == 32
