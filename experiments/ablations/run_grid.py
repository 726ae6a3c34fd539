r"""Run an ablation grid over seeds, one `jaxhead.train` run per (cell, seed), and report it.

    python experiments/ablations/run_grid.py experiments/ablations/trg_table1.py --seeds 0,1,2
    python experiments/ablations/run_grid.py experiments/ablations/trg_table1.py --report

A grid file defines `CONFIG` (the config argument every cell shares), `SPLITS` (our evaluation
splits -> the paper's dataset, or None), `METRICS` (our metric keys -> the paper's column names),
`HIGHER_IS_BETTER` (metric keys) and `GRID`: cell name -> dict(label, overrides, paper), where
`overrides` are `--config.*` values and `paper` the paper's numbers per split and metric.

Each (cell, seed) trains in `WORKDIR/<grid>/<cell>/seed<k>` with `--config.seed=k` (the config
scores every split of SPLITS at the end of training, e.g. `eval.extra_splits`). As soon as it
finishes, its result goes to `RESULTS/<grid>/<cell>/seed<k>.json` (metrics per split, the baseline,
steps, wall time, commit, machine): a small file meant to be committed right away. A (cell, seed)
with a result is skipped; an interrupted one resumes from its workdir's checkpoint.

`--report` rebuilds `RESULTS/<grid>.md` (mean ± std over seeds with the paper's numbers beside them)
and `RESULTS/<grid>.png` (bars with error bars) from the result files alone.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "experiments" / "ablations" / "results"
sys.path.insert(0, str(REPO))

from jaxhead.training.summary import atomic_write  # noqa: E402

GRID_FIELDS = ("CONFIG", "SPLITS", "METRICS", "HIGHER_IS_BETTER", "GRID")


def load_grid(path: Path) -> dict[str, Any]:
    """The grid file's fields (GRID_FIELDS), plus `name` (the file's stem) and `doc`."""
    spec = importlib.util.spec_from_file_location(f"grid_{path.stem}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"{path}: no such grid file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    missing = [f for f in GRID_FIELDS if not hasattr(module, f)]
    if missing:
        raise AttributeError(f"{path} must define {', '.join(missing)} (see {Path(__file__).name}'s docstring)")
    grid = {f.lower(): getattr(module, f) for f in GRID_FIELDS}
    for cell, spec_ in grid["grid"].items():
        if not {"label", "overrides", "paper"} <= set(spec_):
            raise ValueError(f"{path}: GRID[{cell!r}] needs label, overrides and paper; it has {sorted(spec_)}")
    return dict(grid, name=path.stem, doc=(module.__doc__ or "").strip())


def override_args(overrides: dict[str, Any]) -> list[str]:
    """{"model.num_iterations": 1, "eval.extra_splits": ("test_ood",)} -> `--config.*=...` arguments."""
    args = []
    for key, value in overrides.items():
        if isinstance(value, (tuple, list)):
            value = "(" + ",".join(repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        args.append(f"--config.{key}={value}")
    return args


def train_command(train_cmd: list[str], config: str, workdir: Path, seed: int, overrides: dict[str, Any]) -> list[str]:
    """The run's command line; it runs in the repository root, so a workdir inside it is given relative."""
    if workdir.is_absolute() and workdir.resolve().is_relative_to(REPO):
        workdir = workdir.resolve().relative_to(REPO)
    return [*train_cmd, f"--config={config}", f"--workdir={workdir}", f"--config.seed={seed}", *override_args(overrides)]


def shown(cmd: list[str]) -> str:
    """The command as a user would type it: this interpreter as `python`."""
    return shlex.join(["python" if cmd[0] == sys.executable else cmd[0], *cmd[1:]])


def result_path(results: Path, grid: str, cell: str, seed: int) -> Path:
    return results / grid / cell / f"seed{seed}.json"


def git_commit() -> str:
    """The checked-out commit, with "+dirty" when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine() -> dict[str, Any]:
    """The host the runs use (without starting a JAX backend, which the runs need for themselves)."""
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), system=platform.platform(), jax_platforms=os.environ.get("JAX_PLATFORMS", ""))


def read_run(workdir: Path, splits: list[str]) -> dict[str, Any]:
    """Metrics, baseline and example count per split from the run's `eval/<split>.json` reports,
    and its last logged step."""
    out: dict[str, Any] = {"metrics": {}, "baseline": {}, "num_examples": {}}
    for split in splits:
        path = workdir / "eval" / f"{split}.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: the run wrote no report for split {split!r}; the grid's config must score it "
                f"(e.g. --config.eval.extra_splits)")
        report = json.loads(path.read_text())
        out["metrics"][split] = report["model"]
        out["baseline"][split] = report.get("mean-prediction baseline", {})
        out["num_examples"][split] = report.get("num_examples")
    steps = [json.loads(line).get("step", 0) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()] \
        if (workdir / "metrics.jsonl").is_file() else []
    out["steps"] = max(steps, default=None)
    return out


def run_cell(
    grid: dict[str, Any], cell: str, seed: int, *, workdir: Path, results: Path, train_cmd: list[str],
    config: str, extra: dict[str, Any],
) -> dict[str, Any]:
    """Trains (or resumes) one (cell, seed) and writes its result file; returns the result."""
    run_dir = workdir / grid["name"] / cell / f"seed{seed}"
    resumed = (run_dir / "checkpoints").is_dir()
    cmd = train_command(train_cmd, config, run_dir, seed, {**grid["grid"][cell]["overrides"], **extra})
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO)
    wall = time.time() - start
    if proc.returncode != 0:
        raise RuntimeError(f"cell {cell} seed {seed} failed (exit {proc.returncode}): {shown(cmd)}")
    result = dict(
        grid=grid["name"], cell=cell, label=grid["grid"][cell]["label"], seed=seed, config=config,
        overrides={**grid["grid"][cell]["overrides"], **extra}, command=shown(cmd),
        **read_run(run_dir, list(grid["splits"])),
        wall_time_s=round(wall, 1), resumed=resumed, commit=git_commit(), machine=machine(),
        finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    atomic_write(result_path(results, grid["name"], cell, seed), json.dumps(result, indent=2) + "\n")
    return result


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def run_grid(
    grid: dict[str, Any], seeds: list[int], *, workdir: Path, results: Path, train_cmd: list[str],
    config: str | None = None, only: list[str] | None = None, extra: dict[str, Any] | None = None,
    log=print,
) -> int:
    """Runs every (cell, seed) without a result file, seed by seed (a grid cut short still has every
    cell of its first seeds); returns how many it ran."""
    unknown = sorted(set(only or ()) - set(grid["grid"]))
    if unknown:
        raise ValueError(f"--only {unknown}: not cells of {grid['name']} ({', '.join(grid['grid'])})")
    cells = [c for c in grid["grid"] if not only or c in only]
    pairs = [(c, s) for s in seeds for c in cells]
    todo = [(c, s) for c, s in pairs if not result_path(results, grid["name"], c, s).is_file()]
    log(f"[{grid['name']}] {len(pairs)} runs ({len(cells)} cells x {len(seeds)} seeds); "
        f"{len(pairs) - len(todo)} have results, {len(todo)} to run")
    start = time.time()
    for n, (cell, seed) in enumerate(todo, 1):
        elapsed = time.time() - start
        eta = f", ETA {_clock(elapsed / (n - 1) * (len(todo) - n + 1))}" if n > 1 else ""
        log(f"[{grid['name']}] run {n}/{len(todo)}: {cell} seed {seed} (elapsed {_clock(elapsed)}{eta})")
        result = run_cell(grid, cell, seed, workdir=workdir, results=results, train_cmd=train_cmd,
                          config=config or grid["config"], extra=extra or {})
        first = next(iter(grid["metrics"]))
        scores = ", ".join(f"{split} {first} {result['metrics'][split].get(first, float('nan')):.4g}" for split in grid["splits"])
        log(f"[{grid['name']}] run {n}/{len(todo)}: {cell} seed {seed} done in {_clock(result['wall_time_s'])}: {scores}")
    return len(todo)


def load_results(results: Path, grid: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Cell -> its result files' contents (by seed), in the grid's cell order; cells without any are left out."""
    out = {}
    for cell in grid["grid"]:
        files = sorted((results / grid["name"] / cell).glob("seed*.json"), key=lambda p: int(p.stem[4:]))
        if files:
            out[cell] = [json.loads(p.read_text()) for p in files]
    return out


def aggregate(runs: list[dict[str, Any]], split: str, metric: str) -> tuple[float, float, int]:
    """(mean, sample std (0 for one seed), n) of one metric over a cell's seeds."""
    values = np.array([r["metrics"][split][metric] for r in runs if metric in r["metrics"].get(split, {})], np.float64)
    if not len(values):
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0, len(values)


def baseline(found: dict[str, list[dict[str, Any]]], split: str, metric: str) -> float:
    """The mean-prediction baseline (fitted on the training data, so the same for every cell), averaged
    over all result files."""
    values = [r["baseline"][split][metric] for runs in found.values() for r in runs
              if metric in r.get("baseline", {}).get(split, {})]
    return float(np.mean(values)) if values else float("nan")


def _number(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.4g}" if abs(x) < 1000 else f"{x / 1000:.3g}K"


def report_markdown(grid: dict[str, Any], found: dict[str, list[dict[str, Any]]], command: str) -> str:
    """The grid as the paper lays it out: one row per cell, metric columns per split, each
    "ours mean ± std (paper)"; then seeds, steps, wall time and commits per cell."""
    splits, metrics = list(grid["splits"]), grid["metrics"]
    header = ["cell"] + [f"{split}{' (' + grid['splits'][split] + ')' if grid['splits'][split] else ''} {metrics[m]}"
                         for split in splits for m in metrics]
    lines = [
        f"# {grid['name']}: {grid['doc'].splitlines()[0] if grid['doc'] else ''}", "",
        f"Regenerate with `{command}` (from the result files alone).", "",
        f"Config `{grid['config']}`; each entry is our mean ± sample std over seeds (the value alone for one seed), with the paper's number "
        "in parentheses. Ours are on the synthetic data, so compare the ordering of the rows, not the values. "
        + ("Higher is better for " + ", ".join(metrics[m] for m in grid["higher_is_better"]) + "; lower for the rest."
           if grid["higher_is_better"] else "Lower is better everywhere."), "",
        "| " + " | ".join(header) + " |", "|---" * len(header) + "|",
    ]
    for cell, runs in found.items():
        row = [grid["grid"][cell]["label"]]
        for split in splits:
            for m in metrics:
                mean, std, n = aggregate(runs, split, m)
                paper = grid["grid"][cell]["paper"].get(split, {}).get(m)
                ours = "–" if not n else _number(mean) if n == 1 else f"{_number(mean)} ± {_number(std)}"
                row.append(ours + (f" ({_number(paper)})" if paper is not None else ""))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("| mean-prediction baseline | " + " | ".join(
        _number(baseline(found, split, m)) for split in splits for m in metrics) + " |")
    lines += ["", "| cell | seeds | steps | wall time per run (mean) | commits |", "|---|---|---|---|---|"]
    for cell, runs in found.items():
        steps = sorted({r.get("steps") for r in runs}, key=str)
        wall = np.mean([r["wall_time_s"] for r in runs])
        commits = sorted({r["commit"] for r in runs})
        lines.append(f"| {cell} | {', '.join(str(r['seed']) for r in runs)} | {', '.join(map(str, steps))} | "
                     f"{_clock(wall)}{' (some resumed)' if any(r.get('resumed') for r in runs) else ''} | {', '.join(commits)} |")
    machines = sorted({f"{r['machine']['cpu']} ({r['machine']['cores']} cores)" for runs in found.values() for r in runs})
    lines += ["", f"Machine: {'; '.join(machines)}.", ""]
    return "\n".join(lines)


def report_plot(grid: dict[str, Any], found: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """One panel per metric: a bar per cell and split (mean over seeds, error bar one std), and the
    mean-prediction baseline of each split as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits, metrics, cells = list(grid["splits"]), list(grid["metrics"]), list(found)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1, 3.8), squeeze=False)
    width = 0.8 / len(splits)
    x = np.arange(len(cells))
    for ax, m in zip(axes[0], metrics):
        for j, split in enumerate(splits):
            stats = [aggregate(found[c], split, m) for c in cells]
            means = np.array([s[0] for s in stats])
            bars = ax.bar(x + (j - (len(splits) - 1) / 2) * width, np.nan_to_num(means), width,
                          yerr=[s[1] for s in stats], capsize=3, label=split)
            ax.axhline(baseline(found, split, m), color=bars.patches[0].get_facecolor(), ls="--", lw=1)
        finite = [aggregate(found[c], s, m)[0] for c in cells for s in splits]
        finite = [v for v in finite if np.isfinite(v) and v > 0]
        if finite and max(finite) / min(finite) > 30:
            ax.set_yscale("log")
        ax.set_title(grid["metrics"][m] + (" ↑" if m in grid["higher_is_better"] else " ↓"))
        ax.set_xticks(x, [grid["grid"][c]["label"] for c in cells], rotation=35, ha="right", fontsize=8)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{grid['name']}: mean ± std over seeds ({grid['config']}); dashed: mean-prediction baseline", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_report(grid: dict[str, Any], results: Path, grid_path: Path) -> tuple[Path, Path]:
    found = load_results(results, grid)
    if not found:
        raise FileNotFoundError(f"no result files under {results / grid['name']}; run the grid first")
    try:
        shown = grid_path.resolve().relative_to(REPO)
    except ValueError:
        shown = grid_path
    command = f"python experiments/ablations/run_grid.py {shown} --report"
    md, png = results / f"{grid['name']}.md", results / f"{grid['name']}.png"
    atomic_write(md, report_markdown(grid, found, command))
    report_plot(grid, found, png)
    return md, png


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", type=Path, help="a grid file, e.g. experiments/ablations/trg_table1.py")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--workdir", type=Path, default=Path("runs/ablations"), help="where the runs train (relative: to the repository root)")
    p.add_argument("--results", type=Path, default=RESULTS, help="where result files and reports go")
    p.add_argument("--config", help="override the grid's config argument")
    p.add_argument("--only", nargs="*", help="run only these cells")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra --config overrides for every run")
    p.add_argument("--train_cmd", default=f"{shlex.quote(sys.executable)} -m jaxhead.train",
                   help="the training command the config and overrides are appended to")
    p.add_argument("--dry_run", action="store_true", help="print the commands of the runs without results")
    p.add_argument("--report", action="store_true", help="only rebuild the report from the result files")
    args = p.parse_args(argv)
    try:
        grid = load_grid(args.grid)
        if args.report:
            for path in write_report(grid, args.results, args.grid):
                print(f"wrote {path}")
            return
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        bad = [kv for kv in args.set if "=" not in kv]
        if bad:
            raise ValueError(f"--set {bad}: expected KEY=VALUE")
        extra = dict(kv.split("=", 1) for kv in args.set)
        train_cmd = shlex.split(args.train_cmd)
        if args.dry_run:
            for cell in grid["grid"]:
                for seed in seeds:
                    if (args.only and cell not in args.only) or result_path(args.results, grid["name"], cell, seed).is_file():
                        continue
                    run_dir = REPO / args.workdir / grid["name"] / cell / f"seed{seed}"
                    print(shlex.join(train_command(train_cmd, args.config or grid["config"], run_dir, seed,
                                                   {**grid["grid"][cell]["overrides"], **extra})))
            return
        run_grid(grid, seeds, workdir=REPO / args.workdir, results=args.results, train_cmd=train_cmd, config=args.config,
                 only=args.only, extra=extra, log=lambda s: print(s, flush=True))
        for path in write_report(grid, args.results, args.grid):
            print(f"wrote {path}")
    except (FileNotFoundError, AttributeError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
