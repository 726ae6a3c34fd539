"""TRG paper Table 1: refinement iterations, multi-scale features, and the three baselines.

Every cell trains the same `configs/trg.py:ablation` schedule; only the architecture switches differ.
The paper trains on ARKitFace (+ 300W-LP) and tests on ARKitFace and BIWI; here `test` stands for
ARKitFace's test set and `test_ood` (the head farther from another camera, docs/datasets.md) for
BIWI. The paper's "Mean" is the dense 3D landmark error (`recon_mean` here); the landmark-free
baseline predicts no landmarks, so it has none.
"""

CONFIG = "configs/trg.py:ablation"
SPLITS = {"test": "ARKitFace", "test_ood": "BIWI"}  # our split -> the paper's column group
METRICS = {"recon_mean": "Mean", "MAE_r": "MAE_r", "MAE_t": "MAE_t", "ADD": "ADD"}  # ours -> paper
HIGHER_IS_BETTER = ()


def _paper(arkit: tuple, biwi: tuple) -> dict:
    """Table 1's numbers: ARKitFace (Mean, MAE_r, MAE_t, ADD) and BIWI (MAE_r, MAE_t, ADD)."""
    return {
        "test": dict(zip(("recon_mean", "MAE_r", "MAE_t", "ADD"), arkit)),
        "test_ood": dict(zip(("MAE_r", "MAE_t", "ADD"), biwi)),
    }


GRID = {
    "1iter_wo_ms": dict(
        label="1-iter (w/o MS)",
        overrides={"model.num_iterations": 1, "model.multi_scale": False},
        paper=_paper((1.69, 1.00, 3.70, 8.93), (3.28, 13.74, 32.28)),
    ),
    "2iter_wo_ms": dict(
        label="2-iter (w/o MS)",
        overrides={"model.num_iterations": 2, "model.multi_scale": False},
        paper=_paper((1.66, 0.89, 3.61, 8.72), (2.95, 13.77, 31.28)),
    ),
    "3iter_wo_ms": dict(
        label="3-iter (w/o MS)",
        overrides={"model.num_iterations": 3, "model.multi_scale": False},
        paper=_paper((1.57, 0.88, 3.63, 8.71), (2.59, 13.67, 31.52)),
    ),
    "t_prediction": dict(
        label="T_t-prediction",
        overrides={"model.variant": "t_prediction"},
        paper=_paper((1.66, 0.92, 4.64, 11.66), (8.81, 1700.0, 5100.0)),  # printed as 1.7K and 5.1K
    ),
    "landmark_free": dict(
        label="Landmark-free baseline",
        overrides={"model.variant": "landmark_free"},
        paper=_paper((None, 1.03, 3.86, 9.34), (3.87, 18.42, 42.22)),
    ),
    "grid_sampled": dict(
        label="Grid sampled baseline",
        overrides={"model.variant": "grid_sampled"},
        paper=_paper((1.59, 0.95, 3.74, 8.99), (2.98, 14.58, 35.04)),
    ),
    "trg": dict(
        label="TRG (Ours)",
        overrides={},
        paper=_paper((1.58, 0.91, 3.62, 8.68), (2.75, 12.97, 29.46)),
    ),
}
