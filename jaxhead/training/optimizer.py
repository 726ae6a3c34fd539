"""Optax optimisers and learning-rate schedules from `config.optim`.

The learning rate is `schedule(step) * lr_scale`. Both are optax hyperparameters
injected into the optimizer state, so `lr_scale` (moved by the host-side plateau
rule after evaluations) is checkpointed with the optimizer state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax.numpy as jnp
import ml_collections
import optax

from jaxhead.training.monitor import improves

SCHEDULES = ("constant", "step", "plateau", "cosine")


def optim_config(**overrides: Any) -> ml_collections.ConfigDict:
    """Defaults for `config.optim`: Adam 1e-4, constant schedule."""
    cfg = ml_collections.ConfigDict(
        dict(
            name="adam",
            learning_rate=1e-4,
            # "configured": use learning_rate. "torch_adam_default": 1e-3, what the released
            # DAD-3DNet code trains with (its optimizer factory drops the configured rate).
            lr_mode="configured",
            b1=0.9,
            b2=0.999,
            eps=1e-8,
            weight_decay=0.0,
            grad_clip_norm=0.0,
            warmup_steps=0,
            schedule="constant",
            # "step": multiply by `step_factor` at each of `step_epochs` (StepLR-like, per epoch).
            step_epochs=(20,),
            step_factor=0.1,
            # "plateau": ReduceLROnPlateau on the task's monitored validation metric (`Task.best_metric`).
            plateau_factor=0.5,
            plateau_patience=8,
            plateau_min_lr=1e-6,
            plateau_threshold=1e-4,
        )
    )
    cfg.update(overrides)
    return cfg


LR_MODES = {"configured": None, "torch_adam_default": 1e-3}


def base_learning_rate(cfg: ml_collections.ConfigDict) -> float:
    if cfg.lr_mode not in LR_MODES:
        raise ValueError(f"config.optim.lr_mode must be one of {sorted(LR_MODES)}, got {cfg.lr_mode!r}")
    return LR_MODES[cfg.lr_mode] or cfg.learning_rate


def make_schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int) -> Callable:
    """The step -> learning-rate schedule (without the plateau scale)."""
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"config.optim.schedule must be one of {SCHEDULES}, got {cfg.schedule!r}")
    lr = base_learning_rate(cfg)
    if cfg.schedule == "step":
        base = optax.piecewise_constant_schedule(
            lr, {int(e) * steps_per_epoch: cfg.step_factor for e in cfg.step_epochs}
        )
    elif cfg.schedule == "cosine":
        base = optax.cosine_decay_schedule(lr, max(total_steps - cfg.warmup_steps, 1))
    else:
        base = optax.constant_schedule(lr)
    if cfg.warmup_steps:
        warm = optax.linear_schedule(0.0, lr, cfg.warmup_steps)
        return optax.join_schedules([warm, base], [cfg.warmup_steps])
    return base


def make_optimizer(
    cfg: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int
) -> optax.GradientTransformation:
    schedule = make_schedule(cfg, steps_per_epoch, total_steps)

    def build(learning_rate: jnp.ndarray, lr_scale: jnp.ndarray) -> optax.GradientTransformation:
        lr = learning_rate * lr_scale
        if cfg.name == "adam":
            tx = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
        elif cfg.name == "adamw":
            tx = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay)
        elif cfg.name == "sgd":
            tx = optax.sgd(lr, momentum=cfg.b1)
        else:
            raise ValueError(f"config.optim.name must be adam, adamw or sgd, got {cfg.name!r}")
        if cfg.grad_clip_norm:
            tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
        return tx

    return optax.inject_hyperparams(build)(learning_rate=schedule, lr_scale=1.0)


def current_learning_rate(opt_state: Any) -> float:
    h = opt_state.hyperparams
    return float(h["learning_rate"]) * float(h["lr_scale"])


def with_lr_scale(opt_state: Any, scale: float) -> Any:
    """A copy of `opt_state` whose injected `lr_scale` is `scale`."""
    hyper = dict(opt_state.hyperparams)
    hyper["lr_scale"] = jnp.asarray(scale, dtype=jnp.asarray(hyper["lr_scale"]).dtype)
    return opt_state._replace(hyperparams=hyper)


@dataclasses.dataclass
class Plateau:
    """ReduceLROnPlateau (PyTorch semantics, threshold mode 'rel', no cooldown) on the host.

    `step(value)` is called once per evaluation and returns the new learning-rate scale.
    """

    factor: float
    patience: int
    min_scale: float
    mode: str = "min"
    threshold: float = 1e-4
    best: float | None = None  # None: no evaluation yet
    num_bad: int = 0
    scale: float = 1.0

    def step(self, value: float) -> float:
        if improves(value, self.best, self.mode, self.threshold):
            self.best, self.num_bad = value, 0
        else:
            self.num_bad += 1
        if self.num_bad > self.patience:
            self.scale = max(self.scale * self.factor, self.min_scale)
            self.num_bad = 0
        return self.scale

    def state_dict(self) -> dict[str, float | None]:
        return {"best": self.best, "num_bad": self.num_bad, "scale": self.scale}

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.num_bad, self.scale = int(state["num_bad"]), float(state["scale"])


def make_plateau(cfg: ml_collections.ConfigDict, mode: str) -> Plateau | None:
    if cfg.schedule != "plateau":
        return None
    return Plateau(
        factor=cfg.plateau_factor,
        patience=cfg.plateau_patience,
        min_scale=cfg.plateau_min_lr / base_learning_rate(cfg),
        mode=mode,
        threshold=cfg.plateau_threshold,
    )
