"""TRG (ECCV 2024) training configs: `--config=configs/trg.py[:variant]`.

Variants:
  (none)            the paper's architecture and loss weights on the embedded `synthetic_heads` data
                    (the `default` build, ~20k images), with the paper's optimiser and schedule.
  arkitface         the paper setup on ARKitFace: Adam 1e-4 (0.9, 0.999), batch 128, 30 epochs,
                    StepLR at epoch 20 x 0.1, the official augmentations. Needs the manual download and
                    the official ARKit topology files (--config.data.trg_assets_dir).
  arkitface_300wlp  TRG*: ARKitFace mixed with 300W-LP (2D landmarks only, masked 3D/rotation terms).
  cpu               a CPU-sized run for the README demo (see the deviations in `_cpu`).
  ablation          `cpu` on a shorter schedule, for the Table 1 grid (see `_ablation`).
  smoke             a few steps on a tiny synthetic build, for tests.
"""

from __future__ import annotations

import ml_collections

from configs.common import eval_config, shared_img_size, train_config
from data_pipelines.config import trg_data_config
from jaxhead.losses.trg import loss_config
from jaxhead.models.trg import model_config
from jaxhead.training.optimizer import optim_config

VARIANTS = ("synthetic", "arkitface", "arkitface_300wlp", "cpu", "ablation", "smoke")


def _base() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.model = model_config()
    config.loss = loss_config()
    config.data = trg_data_config()
    config.data.batch_size = 128
    # Paper/official: Adam 1e-4, StepLR(step 20 epochs, gamma 0.1), 30 epochs.
    config.optim = optim_config(learning_rate=1e-4, schedule="step", step_epochs=(20,), step_factor=0.1)
    config.train = train_config(num_epochs=30)
    config.eval = eval_config(batch_size=128)
    shared_img_size(config, config.model.img_size, "model", "data")
    return config


def _cpu(config: ml_collections.ConfigDict) -> None:
    """Fits the README run on a 2-core CPU in minutes. Deviations from the paper:
    128 px crops instead of 192 (feature maps 8/16/32 instead of 12/24/48), a quarter-width
    ResNet18, 128-channel deconvolutions and a 256-wide regressor, no dropout, batch 32, Adam 5e-4
    for a fixed number of steps with one step decay, on the `small` synthetic build (2k images)."""
    config.data.builder_config = "small"
    config.model.img_size = 128  # also config.data's: one FieldReference
    config.model.width_multiplier = 0.25
    config.model.deconv_channels = 128
    config.model.regressor_hidden = 256
    config.model.dropout = 0.0
    config.data.batch_size = 32
    config.eval.batch_size = 64
    config.optim.learning_rate = 5e-4
    config.optim.schedule = "step"
    config.train.num_steps = 1500
    config.optim.step_epochs = (20,)  # steps 1280-1500 (64 steps per epoch) at lr x 0.1
    config.train.log_every = 25
    config.train.eval_every_steps = 500
    config.train.checkpoint_every = 500
    config.eval.max_batches = 2


def _ablation(config: ml_collections.ConfigDict) -> None:
    """One cell of `experiments/ablations/trg_table1.py`: the `cpu` model and data on a schedule
    every cell shares, with no periodic evaluation (the result is the last step's model), scored on
    `test` and `test_ood`. 3 min 59 s a cell on a quiet 2-core CPU, measured through the grid runner
    (command to last report: ~30 s to compile, ~2.4 steps/s, ~45 s to evaluate both splits)."""
    _cpu(config)
    config.train.num_steps = 380
    config.optim.step_epochs = (4,)  # steps 256-380 at lr x 0.1
    config.train.eval_every_steps = 380
    config.train.checkpoint_every = 100
    config.eval.extra_splits = ("test_ood",)
    config.eval.num_pictures = 8


def _smoke(config: ml_collections.ConfigDict) -> None:
    config.data.builder_config = "tiny"
    config.model.img_size = 64
    config.model.width_multiplier = 0.125
    config.data.batch_size = 8
    config.data.num_workers = 0
    config.eval.batch_size = 8
    config.eval.num_pictures = 4
    config.train.num_steps = 6
    config.train.log_every = 2
    config.train.eval_every_steps = 3
    config.train.checkpoint_every = 3
    config.eval.max_batches = 1


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = arg or "synthetic"
    if variant not in VARIANTS:
        raise ValueError(f"unknown TRG config variant {variant!r}; choose one of {VARIANTS}")
    config = _base()
    if variant in ("arkitface", "arkitface_300wlp"):
        config.data.dataset = "arkitface"
        config.data.topology = "arkit"
        # Real photographs differ in size; the device augmentation needs one image size per batch.
        config.data.device_augment = False
    if variant == "arkitface_300wlp":
        config.data.extra_datasets = ("w300lp",)
    if variant == "cpu":
        _cpu(config)
    elif variant == "ablation":
        _ablation(config)
    elif variant == "smoke":
        _smoke(config)
    return config
