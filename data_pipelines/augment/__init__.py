"""Training augmentation on the device: pure, vmapped JAX functions of (host batch, key) that run
inside the jitted train step, so the host only decodes (docs/datasets.md).

Each model's module has `sample(key, ...)` (the random parameters, one set per example) and
`apply(batch, params, ...)` (the warp, labels and colour), checked against the numpy reference in
`data_pipelines.pipelines` with the same parameters. `image.py` holds the shared image ops.
"""
