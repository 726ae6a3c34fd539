"""Convert a FLAME pickle to `.npz` once: `python -m flame_jax.convert IN.pkl OUT.npz`.

The pickle is read through the restricted unpickler (no chumpy, nothing executed) and validated;
the `.npz` holds the same key names with float32 arrays, int32 `f` and `parents`, a dense
`J_regressor`, and the source's sha256. It is written atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from flame_jax.io import load_flame_arrays


def convert(src: str | Path, dst: str | Path) -> Path:
    src, dst = Path(src), Path(dst)
    arrays = load_flame_arrays(src)
    out = {k: v.astype(np.float32) for k, v in arrays.items() if k not in ("f", "parents")}
    out.update(
        f=arrays["f"].astype(np.int32),
        parents=arrays["parents"].astype(np.int32),
        source_sha256=np.array(hashlib.sha256(src.read_bytes()).hexdigest()),
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **out)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="FLAME .pkl (2020, 2023 or 2023 Open)")
    parser.add_argument("dst", help="output .npz")
    args = parser.parse_args(argv)
    try:
        print(convert(args.src, args.dst))
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
