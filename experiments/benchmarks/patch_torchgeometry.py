"""Applies the mask cast that TRG's docs/install.md asks of torchgeometry 0.1.2 (bool masks, torch >= 1.2).

    python experiments/benchmarks/patch_torchgeometry.py

Edits the installed package in place, once; a benchmark-only setup step for torch_reference.py.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

CAST = {
    "mask_c0 = mask_d2 * mask_d0_d1": "mask_c0 = mask_d2.float() * mask_d0_d1.float()",
    "mask_c1 = mask_d2 * (1 - mask_d0_d1)": "mask_c1 = mask_d2.float() * (1 - mask_d0_d1.float())",
    "mask_c2 = (1 - mask_d2) * mask_d0_nd1": "mask_c2 = (1 - mask_d2.float()) * mask_d0_nd1.float()",
    "mask_c3 = (1 - mask_d2) * (1 - mask_d0_nd1)": (
        "mask_c3 = (1 - mask_d2.float()) * (1 - mask_d0_nd1.float())"
    ),
}


def main() -> None:
    spec = importlib.util.find_spec("torchgeometry")
    if spec is None or spec.origin is None:
        raise SystemExit("torchgeometry is not installed: pip install torchgeometry==0.1.2")
    path = Path(spec.origin).parent / "core" / "conversions.py"
    text = path.read_text()
    for old, new in CAST.items():
        text = re.sub(rf"^(\s*){re.escape(old)}$", lambda m: m.group(1) + new, text, flags=re.M)
    if any(new not in text for new in CAST.values()):
        raise SystemExit(f"{path}: the four mask lines of rotation_matrix_to_quaternion were not found")
    path.write_text(text)
    print(f"patched {path}")


if __name__ == "__main__":
    main()
