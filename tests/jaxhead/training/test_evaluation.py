"""Multi-process evaluation counting, without a cluster: threads stand in for processes (their
own `jax.process_index`, a barrier for `process_allgather`) over the real data-layer split
(`process_batches`) and the real lock-step padding and gathering of `evaluation`."""

from __future__ import annotations

import threading
from typing import Any, Callable

import grain
import jax
import numpy as np
import pytest
from jax.experimental import multihost_utils

from data_pipelines.pipelines import process_batches
from jaxhead.training import evaluation

NUM_PROCESSES = 2


class _FakeHosts:
    """Patches jax's process queries and `process_allgather` so that each thread is a process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, num: int):
        self.num, self.local = num, threading.local()
        self.barrier = threading.Barrier(num, timeout=20)
        self.slots: list[Any] = [None] * num
        monkeypatch.setattr(jax, "process_count", lambda: num)
        monkeypatch.setattr(jax, "process_index", lambda: self.local.index)
        monkeypatch.setattr(multihost_utils, "process_allgather", self.allgather)

    def allgather(self, tree: Any, tiled: bool = False) -> Any:
        assert not tiled
        self.slots[self.local.index] = tree
        self.barrier.wait()
        out = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *self.slots)
        self.barrier.wait()  # nobody overwrites a slot before all have read it
        return out

    def run(self, fn: Callable[[], Any]) -> list[Any]:
        """fn() on every fake process; its results (or the exception it raised), by process."""
        results: list[Any] = [None] * self.num

        def target(i: int) -> None:
            self.local.index = i
            try:
                results[i] = fn()
            except Exception as e:  # noqa: BLE001  (handed back to the test)
                results[i] = e

        threads = [threading.Thread(target=target, args=(i,)) for i in range(self.num)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a fake process hangs"
        return results


def _eval_batches(num_examples: int, local_batch: int) -> grain.MapDataset:
    """This process's evaluation batches of a split whose example i is {"x": i, "id": "i"}."""
    ds = grain.MapDataset.range(num_examples).map(lambda i: {"x": np.float64(i) + 0.5, "id": str(i)})
    return process_batches(ds.batch(local_batch), train=False)


@pytest.mark.parametrize(
    "num_examples, local_batch",
    [(32, 14), (32, 6), (31, 4), (5, 4), (8, 4)],
    ids=["last-process-runs-out", "partial-last-batch", "odd-split", "one-row-on-process-1", "even"],
)
def test_every_example_is_counted_once_in_global_order(
    monkeypatch: pytest.MonkeyPatch, num_examples: int, local_batch: int
) -> None:
    hosts = _FakeHosts(monkeypatch, NUM_PROCESSES)

    def evaluate() -> tuple[int, np.ndarray]:
        steps = list(evaluation.lockstep_batches(iter(_eval_batches(num_examples, local_batch)), local_batch))
        assert all(len(b["x"]) == local_batch for b, _ in steps)
        values = {"x": np.stack([b["x"] for b, _ in steps])}
        mask = np.stack([np.arange(local_batch) < n for _, n in steps])
        return len(steps), evaluation._allgather_rows(values, mask)["x"]

    results = hosts.run(evaluate)
    expected = np.arange(num_examples) + 0.5  # float64 survives the gather
    num_global_batches = -(-num_examples // (NUM_PROCESSES * local_batch))
    for steps, x in results:
        assert steps == num_global_batches
        assert x.dtype == np.float64
        np.testing.assert_array_equal(x, expected)


def test_baseline_rows_are_the_global_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = _FakeHosts(monkeypatch, NUM_PROCESSES)
    results = hosts.run(lambda: [b["x"] for b in evaluation.global_rows(iter(_eval_batches(11, 3)), 3)])
    for batches in results:
        assert [len(b) for b in batches] == [6, 5]  # string ids are left out
        np.testing.assert_array_equal(np.concatenate(batches), np.arange(11) + 0.5)


def test_a_process_without_examples_fails_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = _FakeHosts(monkeypatch, NUM_PROCESSES)
    results = hosts.run(lambda: list(evaluation.lockstep_batches(iter(_eval_batches(3, 4)), 4)))
    for r in results:
        assert isinstance(r, ValueError) and "processes [1] got no example" in str(r)


def test_training_batches_are_whole_global_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = _FakeHosts(monkeypatch, NUM_PROCESSES)
    ds = grain.MapDataset.range(30).batch(4, drop_remainder=True)  # 7 local batches: 3 global ones
    per_process = hosts.run(lambda: [list(b) for b in process_batches(ds, train=True)])
    global_batches = [sum((per_process[p][k] for p in range(NUM_PROCESSES)), []) for k in range(3)]
    assert all(len(b) == 3 for b in per_process)
    assert global_batches == [list(range(8 * k, 8 * k + 8)) for k in range(3)]


def test_one_process_keeps_the_plain_batches() -> None:
    ds = grain.MapDataset.range(10).batch(4)
    assert [list(b) for b in process_batches(ds, train=False)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    steps = list(evaluation.lockstep_batches(iter([{"x": np.arange(4)}, {"x": np.arange(2)}]), 4))
    assert [n for _, n in steps] == [4, 2] and steps[1][0]["x"].tolist() == [0, 1, 1, 1]
