r"""Run an ablation grid: one `jaxhead.train` run per cell, then one table of the results.

    python experiments/ablations/run_grid.py --grid experiments/ablations/trg_table1.py \
        --workdir runs/trg_table1 [--config configs/trg.py:cpu] [--only NAME ...] [--dry_run]

A grid file defines `CONFIG` (the base config argument) and `GRID`, a dict from cell name
to `--config.*` overrides. Each cell trains in `WORKDIR/<cell>` in its own process, so
an interrupted grid resumes where it stopped (finished cells are skipped, unfinished
ones resume from their checkpoints). The table goes to `WORKDIR/summary.md` and `.json`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from jaxhead.training.summary import markdown_table  # noqa: E402


def load_grid(path: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    spec = importlib.util.spec_from_file_location("grid", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load grid file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("CONFIG", "GRID"):
        if not hasattr(module, name):
            raise AttributeError(f"{path} must define {name}")
    return module.CONFIG, module.GRID


def override_args(overrides: dict[str, Any]) -> list[str]:
    args = []
    for key, value in overrides.items():
        if isinstance(value, (tuple, list)):
            value = "(" + ",".join(repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        args.append(f"--config.{key}={value}")
    return args


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", type=Path, required=True)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--config", help="override the grid's base config argument")
    p.add_argument("--only", nargs="*", help="run only these cells")
    p.add_argument("--set", nargs="*", default=[], help="extra overrides for every cell, KEY=VALUE")
    p.add_argument("--dry_run", action="store_true", help="print the commands without running them")
    args = p.parse_args()

    base, grid = load_grid(args.grid)
    base = args.config or base
    extra = dict(kv.split("=", 1) for kv in args.set)
    rows: dict[str, dict[str, float]] = {}
    for name, overrides in grid.items():
        if args.only and name not in args.only:
            continue
        workdir = args.workdir / name
        report = workdir / "eval" / "test.json"
        cmd = [sys.executable, "-m", "jaxhead.train", f"--config={base}", f"--workdir={workdir}"]
        cmd += override_args({**overrides, **extra})
        if args.dry_run:
            print(" ".join(cmd))
            continue
        if not report.exists():
            print(f"[grid] {name}: {' '.join(cmd[3:])}", flush=True)
            subprocess.run(cmd, check=True, cwd=REPO)
        rows[name] = json.loads(report.read_text())["model"]
    if rows:
        args.workdir.mkdir(parents=True, exist_ok=True)
        (args.workdir / "summary.json").write_text(json.dumps(rows, indent=2))
        table = f"# {args.grid.stem} ({base})\n\n" + markdown_table(rows)
        (args.workdir / "summary.md").write_text(table)
        print(table)


if __name__ == "__main__":
    main()
