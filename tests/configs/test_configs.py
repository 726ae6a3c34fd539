"""Configs that cannot drift: one command-line override of `img_size` reaches every consumer,
whichever block it is given on, for every variant of both models."""

from __future__ import annotations

from pathlib import Path

import pytest
from absl import flags
from ml_collections import config_flags

REPO = Path(__file__).resolve().parents[2]
CONSUMERS = {"trg": ("model", "data"), "dad3dnet": ("model", "loss", "data")}


def _parse(config_arg: str, *overrides: str):
    argv = ["prog", f"--config={REPO / 'configs' / config_arg}", *overrides]
    fv = flags.FlagValues()
    # sys_argv: config_flags defines an override flag for each override it finds there.
    config_flags.DEFINE_config_file("config", None, "config", flag_values=fv, lock_config=True, sys_argv=argv)
    fv(argv)
    return fv.config


@pytest.mark.parametrize("model", sorted(CONSUMERS))
def test_one_img_size_override_reaches_every_consumer(model: str) -> None:
    import importlib

    variants = importlib.import_module(f"configs.{model}").VARIANTS
    for variant in variants:
        for block in CONSUMERS[model]:
            config = _parse(f"{model}.py:{variant}", f"--config.{block}.img_size=160")
            assert {b: config[b].img_size for b in CONSUMERS[model]} == dict.fromkeys(CONSUMERS[model], 160), (
                variant, block)


def test_variants_keep_their_sizes_consistent() -> None:
    config = _parse("dad3dnet.py:cpu")
    assert config.model.img_size == config.loss.img_size == config.data.img_size == 128
    config = _parse("trg.py:smoke")
    assert config.model.img_size == config.data.img_size == 64


def test_an_unknown_override_key_names_its_path_and_the_closest_key() -> None:
    from configs import trg

    from jaxhead.config_overrides import missing_key

    config = trg.get_config("smoke")
    assert missing_key(config, "train.num_steps") is None
    message = missing_key(config, "train.num_step")
    assert message.startswith("--config.train.num_step: train has no key 'num_step'")
    assert "did you mean --config.train.num_steps?" in message
    assert "the config has no key 'trian'" in missing_key(config, "trian.num_steps")


def test_an_indivisible_eval_batch_names_its_field() -> None:
    import jax
    import numpy as np
    from jax.sharding import Mesh

    from jaxhead.training.sharding import local_batch_size

    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))

    class ThreeDevices:
        devices = np.zeros(3)

    with pytest.raises(ValueError, match=r"config.eval.batch_size=10 .* --config.eval.batch_size=9"):
        local_batch_size(10, ThreeDevices(), "eval.batch_size")
    assert local_batch_size(8, mesh, "eval.batch_size") == 8
