"""Multi-host training: 2 processes x 2 CPU devices through `jax.distributed` on the loopback
interface give the loss curve, evaluations and final parameters of 1 process x 4 devices.

Not bitwise: XLA's in-process all-reduce and gloo's cross-process one sum the four devices'
partial gradients in different orders (even a 1-process run with gloo collectives differs
from one without in the last bit at step 1). The comparison is therefore relative, at 1e-6.
The tiny smoke network amplifies last-bit differences fast (measured over 6 steps: Adam 1e-4
gives 5e-3 in the gradient norm after four steps, SGD 1e-2 1.7e-2 in the loss after six), so
the run uses SGD at 1e-4. Measured: the loss curve agrees to 1.5e-7, the evaluations to 8e-8,
the baseline bitwise, the final parameters to 2.7e-7 of the largest one; the updates of steps
4-6, against their own much smaller scale, to 8.8e-5.

The periodic and final evaluations use a global batch of 28 on the 32 test examples: the last
global batch has 4 rows, all on process 0, so process 1 has run out and must pad in lock
step; the baseline is fitted on a partial last batch too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from jaxhead import checkpoint

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 1800  # a bound for a hang only, far above a normal run even on a busy machine
RTOL = 1e-6  # losses, evaluation metrics and the baseline
# The parameters carry gloo's other summation order through 6 steps. How far depends on the
# dropout masks and augmentation draws; measured with two sets of keys: the whole tree 1.7e-6 of
# its scale; 2.3e-5 and 1.1e-4 per leaf; 8.8e-5 and 1.5e-3 in the updates of steps 4-6, which are
# differences of f32 parameters (the 1.5e-3 is one ulp of a ~0.1 kernel against its 1.8e-5 update).
PARAM_RTOL = 5e-6
LEAF_RTOL = 3e-4
# The gradient norm sums squares over every leaf, the ~1e-7 noise leaves too: measured 2.4e-6 at step 5.
GRAD_NORM_RTOL = 1e-4
UPDATE_RTOL = 5e-3
OVERRIDES = (
    "--config.train.log_every=1",
    "--config.eval.batch_size=28",
    "--config.eval.max_batches=0",
    "--config.optim.name=sgd",
    "--config.optim.learning_rate=1e-4",
)


# What would make a child join another job (or see other devices) than the one launched here.
_HOST_ENV = ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID",
             "TPU_WORKER_HOSTNAMES")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(argv: list[str], num_processes: int, devices_per_process: int, timeout: float, logdir: Path) -> None:
    """Runs `python argv` as `num_processes` local processes of one `jax.distributed` job (a
    plain process for 1). Fails, after killing the others, as soon as one fails or past
    `timeout`, so a process left waiting in a collective cannot hang the suite."""
    base = {k: v for k, v in os.environ.items() if k not in _HOST_ENV and not k.startswith(("SLURM_", "OMPI_"))}
    base.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}")
    port = _free_port()
    logdir.mkdir(parents=True, exist_ok=True)
    procs, logs = [], [logdir / f"process_{i}.log" for i in range(num_processes)]
    for i, log in enumerate(logs):
        env = dict(base)
        if num_processes > 1:
            env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(num_processes),
                       JAX_PROCESS_ID=str(i))
        with log.open("w") as f:
            procs.append(subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdout=f, stderr=f))
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        failed = [i for i, p in enumerate(procs) if p.returncode not in (None, 0)]
        if failed or time.monotonic() > deadline:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            break
        time.sleep(0.5)
    for i, (p, log) in enumerate(zip(procs, logs)):
        if p.returncode != 0:
            why = f"exit status {p.returncode}" if time.monotonic() <= deadline else f"still running after {timeout} s"
            pytest.fail(f"process {i} of {num_processes} ({why}):\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def cpu_collectives(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skips unless two local processes can all-reduce over JAX's CPU collectives."""
    probe = textwrap.dedent("""
        import os
        import jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        jax.distributed.initialize(num_processes=2, process_id=int(os.environ["JAX_PROCESS_ID"]))
        mesh = Mesh(np.asarray(jax.devices()), ("d",))
        x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("d")), np.ones(2, np.float32))
        assert int(jax.jit(lambda x: x.sum(), out_shardings=NamedSharding(mesh, P()))(x)) == 4
    """)
    try:
        _launch(["-c", probe], 2, 1, timeout=120, logdir=tmp_path_factory.mktemp("collectives"))
    except pytest.fail.Exception as e:
        pytest.skip(f"JAX's CPU collectives between two local processes are unavailable: {str(e)[-600:]}")


def _train(workdir: Path, data_dir: Path, num_processes: int, devices_per_process: int) -> None:
    argv = ["-m", "jaxhead.train", "--config=configs/trg.py:smoke", f"--workdir={workdir}",
            f"--config.data.data_dir={data_dir}", *OVERRIDES]
    _launch(argv, num_processes, devices_per_process, RUN_TIMEOUT_S, workdir.with_name(workdir.name + "_logs"))


def _metrics(workdir: Path) -> dict[tuple[int, str], dict[str, float]]:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {(r.pop("step"), r.pop("split")): {k: v for k, v in r.items() if k != "images_per_s"} for r in rows}


def _params(workdir: Path, step: int | None = None) -> dict:
    model, _, _ = checkpoint.load_model(workdir, step)
    return nnx.to_pure_dict(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))


def _max_rel(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Max over leaves of |a - b| relative to the leaf's scale (at least 1e-3 of the tree's)."""
    floor = 1e-3 * max(float(np.abs(x).max()) for x in a)
    return max(float(np.abs(x - y).max()) / max(float(np.abs(x).max()), floor) for x, y in zip(a, b))


def test_two_hosts_match_one_host(cpu_collectives: None, synthetic_tiny: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "1x4", tmp_path / "2x2"
    _train(one, synthetic_tiny, 1, 4)
    _train(two, synthetic_tiny, 2, 2)

    m1, m2 = _metrics(one), _metrics(two)
    assert m1.keys() == m2.keys()
    assert sorted(k for k in m1 if k[1] == "test") == [(3, "test"), (6, "test")]
    assert len({round(v["loss"], 4) for (_, split), v in m1.items() if split == "train"}) == 6
    for key in m1:
        assert m1[key].keys() == m2[key].keys(), key
        for name, v in m1[key].items():
            rtol = GRAD_NORM_RTOL if name == "grad_norm" else RTOL
            assert abs(v - m2[key][name]) <= rtol * max(abs(v), 1e-3), (key, name, v, m2[key][name])

    # Every test example scored once, with the same metrics and the same baseline.
    r1, r2 = (json.loads((w / "eval" / "test.json").read_text()) for w in (one, two))
    assert r1["num_examples"] == r2["num_examples"] == 32
    for row in ("model", "mean-prediction baseline"):
        for name, v in r1[row].items():
            assert abs(v - r2[row][name]) <= RTOL * max(abs(v), 1e-3), (row, name, v, r2[row][name])

    (s1, p1), (s2, p2) = ((checkpoint.read_config(w)[1], _params(w)) for w in (one, two))
    assert s1 == s2 == 6
    a, b = jax.tree.leaves(p1), jax.tree.leaves(p2)
    assert len(a) == len(b) > 0
    tree_scale = max(float(np.abs(x).max()) for x in a)
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) <= PARAM_RTOL * tree_scale
    # Per leaf, looser: some leaves are ~1e-7 rounding noise (biases before BatchNorm).
    assert _max_rel(a, b) <= LEAF_RTOL, _max_rel(a, b)
    # The updates of steps 4-6 themselves, not only the parameters they barely move.
    u1, u2 = ([x - y for x, y in zip(jax.tree.leaves(_params(w, 6)), jax.tree.leaves(_params(w, 3)))]
              for w in (one, two))
    assert max(float(np.abs(u).max()) for u in u1) > 0
    assert _max_rel(u1, u2) <= UPDATE_RTOL, _max_rel(u1, u2)
