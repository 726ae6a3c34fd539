"""`config.data` for the two models (ml_collections; overridable as --config.data.key=value)."""

from __future__ import annotations

import ml_collections


def _common(dataset: str, builder_config: str, img_size: int) -> dict:
    return dict(
        dataset=dataset,  # a name from data_pipelines.builders.BUILDERS
        builder_config=builder_config,  # "" for builders without configs
        data_dir="",  # "" -> $JAXHEAD_DATA or ./data
        manual_dir="",  # source files of a manual-download dataset, used when it is built on first use
        batch_size=64,  # global batch, split over all devices and hosts
        num_workers=2,  # grain worker processes per host (0: in the main process)
        img_size=img_size,
        # Training augmentation inside the jitted step (data_pipelines.augment); the host only decodes.
        device_augment=True,
    )


def trg_data_config() -> ml_collections.ConfigDict:
    """TRG input pipeline (spec trg.md §8-9): 1.5x landmark box, jitter, flip, in-plane rotation, colour."""
    return ml_collections.ConfigDict(
        dict(
            **_common("synthetic_heads", "default", 192),
            topology="synthetic",  # or "arkit" (needs trg_assets_dir and flip_index_path)
            trg_assets_dir="",
            flip_index_path="",
            synthetic_seed=0,
            # e.g. ("w300lp",) for TRG*: mixed in with equal weight per example; an epoch is one pass
            # over the whole mixture. Entries are "name" or "name/builder_config".
            extra_datasets=(),
            box_scale=1.5,
            augment=dict(
                flip_p=0.5,
                centre_jitter=0.15,  # x box size, per axis
                scale_jitter=(0.95, 1.05),
                rotate_p=0.3,
                rotate_deg=30.0,
                color_jitter=(0.3, 0.3, 0.2, 0.01),  # brightness, contrast, saturation, hue
            ),
        )
    )


def dad3dnet_data_config() -> ml_collections.ConfigDict:
    """DAD-3DNet input pipeline (spec dad3dnet.md §9-10): enlarged box, longest side 256, heatmaps."""
    return ml_collections.ConfigDict(
        dict(
            **_common("synthetic_heads", "default", 256),
            synthetic_seed=0,
            extra_datasets=(),
            enlarge=(0.05, 0.15),  # per-side box enlargement U[a, b)
            heatmap_sigma=11.0 / 6.0,
            # The official code applies the random enlargement to the validation split too.
            val_jitter=True,
        )
    )
