"""The iBUG 68-point layout: its left/right mirror permutation (for flipped images)."""

from __future__ import annotations

import numpy as np

# Left/right pairs (0-based); the other points lie on the midline.
IBUG_MIRROR_PAIRS = (
    [(i, 16 - i) for i in range(8)]  # jaw contour
    + [(17 + i, 26 - i) for i in range(5)]  # brows
    + [(31, 35), (32, 34)]  # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    + [(60, 64), (61, 63), (65, 67)]  # inner lips
)


def ibug_mirror() -> np.ndarray:
    """(68,) permutation p: point k of a mirrored face is point p[k] of the original, mirrored."""
    p = np.arange(68)
    for a, b in IBUG_MIRROR_PAIRS:
        p[a], p[b] = b, a
    return p
