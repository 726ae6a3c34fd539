"""DAD-3DNet paper Table 7: the cumulative loss ablation on DAD-3DHeads.

Every cell trains the same `configs/dad3dnet.py:ablation` schedule; only `loss.variant` differs
(`jaxhead/losses/dad3dnet.py` says what each row switches on). Rows 1-4 have no landmark head: their
68 landmarks, and so their NME, are the reprojected mesh's. The paper's baseline (row 1) does not say
what supervises the 3DMM; we read it as the 68 reprojected landmarks (the loss module's docstring).
Our `test` split stands for the DAD-3DHeads test set; `test_ood` (the head farther from another
camera, docs/datasets.md) has no counterpart in the paper.
"""

CONFIG = "configs/dad3dnet.py:ablation"
SPLITS = {"test": "DAD-3DHeads", "test_ood": None}  # our split -> the paper's column group
METRICS = {"nme": "NME", "z5": "Z5", "pose_error": "Pose"}  # ours -> paper
HIGHER_IS_BETTER = ("z5",)

_ROWS = {
    1: ("baseline", (2.576, 0.880, 0.267)),
    2: ("+ full face reprojection loss", (2.395, 0.873, 0.263)),
    3: ("+ full head reprojection loss", (2.500, 0.943, 0.172)),
    4: ("+ shape+expression loss", (2.471, 0.951, 0.139)),
    5: ("+ landmark prediction head", (2.302, 0.954, 0.138)),
}

GRID = {
    f"row{k}": dict(
        label=label,
        overrides={"loss.variant": f"table7_row{k}"},
        paper={"test": dict(zip(METRICS, numbers))},
    )
    for k, (label, numbers) in _ROWS.items()
}
