"""The ablation-grid runner on a fake grid whose "training command" is a tiny script that writes
the reports a real run would: seeds reach the runs, finished runs are skipped, an interrupted run
resumes, results aggregate over seeds, and the report is rebuilt from the result files alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments" / "ablations"))

import run_grid  # noqa: E402

FAKE_TRAIN = r'''
import json, os, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
workdir, seed, k = Path(args["workdir"]), int(args["config.seed"]), float(args["config.model.k"])
(workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
if os.environ.get("FAKE_FAIL") == f"{workdir.parent.name}/{seed}" and not (workdir / "failed_once").exists():
    (workdir / "failed_once").touch()
    sys.exit(3)
(workdir / "eval").mkdir(exist_ok=True)
for split, scale in (("test", 1.0), ("test_ood", 2.0)):
    report = {"model": {"err": scale * (k + 0.5 * seed)}, "mean-prediction baseline": {"err": 9.0}, "num_examples": 4}
    (workdir / "eval" / f"{split}.json").write_text(json.dumps(report))
(workdir / "metrics.jsonl").write_text(json.dumps({"step": 7, "split": "test"}) + "\n")
'''

GRID_FILE = '''"""A fake grid for the runner's tests."""
CONFIG = "fake.py:ablation"
SPLITS = {"test": "PaperSet", "test_ood": None}
METRICS = {"err": "Err"}
HIGHER_IS_BETTER = ()
GRID = {
    "small": dict(label="Small k", overrides={"model.k": 1}, paper={"test": {"err": 1.5}}),
    "big": dict(label="Big k", overrides={"model.k": 3}, paper={}),
}
'''


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "fake_train.py").write_text(FAKE_TRAIN)
    grid_path = tmp_path / "fake_grid.py"
    grid_path.write_text(GRID_FILE)
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls.txt"))
    kwargs = dict(workdir=tmp_path / "runs" / "x", results=tmp_path / "results",
                  train_cmd=[sys.executable, str(tmp_path / "fake_train.py")])
    return tmp_path, grid_path, kwargs


def test_seeds_skipping_resume_and_report(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path, grid_path, kwargs = setup
    grid = run_grid.load_grid(grid_path)
    log: list[str] = []
    assert run_grid.run_grid(grid, [0, 1], log=log.append, **kwargs) == 4
    results = kwargs["results"]
    files = sorted(p.relative_to(results).as_posix() for p in results.rglob("*.json"))
    assert files == ["fake_grid/big/seed0.json", "fake_grid/big/seed1.json",
                     "fake_grid/small/seed0.json", "fake_grid/small/seed1.json"]
    r = json.loads((results / "fake_grid/big/seed1.json").read_text())
    assert r["seed"] == 1 and "--config.seed=1" in r["command"] and "--config.model.k=3" in r["command"]
    assert r["metrics"] == {"test": {"err": 3.5}, "test_ood": {"err": 7.0}}
    assert r["baseline"]["test"] == {"err": 9.0} and r["steps"] == 7 and r["resumed"] is False
    assert r["commit"] and r["machine"]["cores"] >= 1 and r["wall_time_s"] >= 0
    started = [line.split(": ", 1)[1].split(" (")[0] for line in log if "(elapsed" in line]
    assert started == ["small seed 0", "big seed 0", "small seed 1", "big seed 1"], log
    assert any(line.startswith("[fake_grid] run 2/4: big seed 0 (elapsed") and "ETA" in line for line in log), log

    # Finished pairs are skipped: nothing runs; a missing result file is run again, alone.
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert len(calls) == 4
    assert run_grid.run_grid(grid, [0, 1], log=log.append, **kwargs) == 0
    (results / "fake_grid/small/seed0.json").unlink()
    assert run_grid.run_grid(grid, [0, 1], log=log.append, **kwargs) == 1
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 5

    # A failed run raises naming the cell, writes no result, and the next call resumes it.
    monkeypatch.setenv("FAKE_FAIL", "big/2")
    with pytest.raises(RuntimeError, match="cell big seed 2 failed"):
        run_grid.run_grid(grid, [2], only=["big"], log=log.append, **kwargs)
    assert not (results / "fake_grid/big/seed2.json").exists()
    assert run_grid.run_grid(grid, [2], only=["big"], log=log.append, **kwargs) == 1
    assert json.loads((results / "fake_grid/big/seed2.json").read_text())["resumed"] is True

    # Aggregation over seeds: big has seeds 0, 1, 2 -> err 3, 3.5, 4.
    found = run_grid.load_results(results, grid)
    assert list(found) == ["small", "big"]
    mean, std, n = run_grid.aggregate(found["big"], "test", "err")
    assert n == 3 and mean == pytest.approx(3.5) and std == pytest.approx(np.std([3, 3.5, 4], ddof=1))
    assert run_grid.aggregate(found["small"], "test_ood", "err")[:2] == pytest.approx((2.5, np.std([2, 3], ddof=1)))

    # The report comes from the result files alone (the workdirs may be gone).
    import shutil

    shutil.rmtree(tmp_path / "runs")
    run_grid.main([str(grid_path), "--results", str(results), "--report"])
    md = (results / "fake_grid.md").read_text()
    assert "--report" in md.splitlines()[2]
    assert "| cell | test (PaperSet) Err | test_ood Err |" in md
    assert "| Small k | 1.25 ± 0.3536 (1.5) | 2.5 ± 0.7071 |" in md
    assert "| Big k | 3.5 ± 0.5 | 7 ± 1 |" in md
    assert "| mean-prediction baseline | 9 | 9 |" in md
    assert "| big | 0, 1, 2 | 7 |" in md and "(some resumed)" in md
    assert (results / "fake_grid.png").stat().st_size > 5000


def test_bad_grids_and_arguments_fail_clearly(setup, capsys: pytest.CaptureFixture) -> None:
    tmp_path, grid_path, kwargs = setup
    bad = tmp_path / "bad_grid.py"
    bad.write_text('CONFIG = "x"\nGRID = {}\n')
    with pytest.raises(AttributeError, match="must define SPLITS, METRICS, HIGHER_IS_BETTER"):
        run_grid.load_grid(bad)
    with pytest.raises(ValueError, match="not cells of fake_grid"):
        run_grid.run_grid(run_grid.load_grid(grid_path), [0], only=["nope"], **kwargs)
    with pytest.raises(SystemExit, match="no result files"):
        run_grid.main([str(grid_path), "--results", str(tmp_path / "empty"), "--report"])
    run_grid.main([str(grid_path), "--seeds", "0,4", "--only", "small", "--dry_run",
                   "--train_cmd", "train", "--workdir", "W"])
    out = capsys.readouterr().out.splitlines()
    assert out == [f"train --config=fake.py:ablation --workdir=W/fake_grid/small/seed{s} --config.seed={s} --config.model.k=1"
                   for s in (0, 4)]


@pytest.mark.parametrize("grid_file", ["trg_table1.py", "dad_table7.py"])
def test_the_real_grid_files_load(grid_file: str) -> None:
    grid = run_grid.load_grid(REPO / "experiments" / "ablations" / grid_file)
    assert set(grid["splits"]) == {"test", "test_ood"}
    for cell in grid["grid"].values():
        assert set(cell["paper"]) <= set(grid["splits"])
        for numbers in cell["paper"].values():
            assert set(numbers) <= set(grid["metrics"])
