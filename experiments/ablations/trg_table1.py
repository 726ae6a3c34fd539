"""TRG paper Table 1: iterations, multi-scale features, and the three baselines.

Every cell trains the same schedule; only the architecture switches differ.
"""

CONFIG = "configs/trg.py"

GRID = {
    "1iter_wo_ms": {"model.num_iterations": 1, "model.multi_scale": False},
    "2iter_wo_ms": {"model.num_iterations": 2, "model.multi_scale": False},
    "3iter_wo_ms": {"model.num_iterations": 3, "model.multi_scale": False},
    "t_prediction": {"model.variant": "t_prediction"},
    "landmark_free": {"model.variant": "landmark_free"},
    "grid_sampled": {"model.variant": "grid_sampled"},
    "trg": {},
}
