r"""Side by side with the official PyTorch code: train steps and FLAME LBS, timed alternately in one process.

    python experiments/benchmarks/torch_reference.py --model trg --official_dir OFFICIAL_TRG [--batch 8]
    python experiments/benchmarks/torch_reference.py --model dad3dnet --official_dir OFFICIAL_DAD [--batch 8]
    python experiments/benchmarks/torch_reference.py --smplx [--lbs_batches 1 64 1024]
    ... [--device cuda] [--dtype bfloat16] [--rounds 5] [--write]

`--official_dir` is a checkout of the official repository (TRG-Release or DAD-3DHeads); its modules are
imported from there at run time. Both sides train on the same random batch of the training shapes with
Adam; each round times one official step then one jaxhead step (A B A B ...), so that machine noise hits
both. Prints medians and the ratio (jaxhead img/s / official img/s); `--write` records the rows in
RESULTS.md with the machine. Setup of the official code: experiments/benchmarks/README.md.

What each official step contains:
  trg       the official TRG network and the loss of its train.py (3 loops: world/camera/image vertices,
            5-point landmarks, rotation, edges; 68-landmark heatmap soft-argmax), its loss functions.
  dad3dnet  the official FlameRegression and its IoU heatmap and landmark losses. The FLAME terms
            (3D vertices, reprojection) need the FLAME pickle, which the repository does not ship;
            they are left out, which favours the official side (they are a few ms of a step of seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from experiments.benchmarks.results_file import write_section  # noqa: E402

SECTION = "## Side by side with the official PyTorch code (torch_reference.py)"
TABLE_HEAD = (
    "| what | batch | dtype | official img/s | jaxhead img/s | ratio | jaxhead commit | MFU | load avg "
    "| machine |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
)


class OfficialCodeMissing(SystemExit):
    """The official checkout or one of its extras is absent: the comparison cannot run."""


def _require(path: str | None, marker: str, what: str) -> Path:
    if not path:
        raise OfficialCodeMissing(
            f"skipped: --official_dir is required for {what} (a checkout of the official repository)"
        )
    root = Path(path).expanduser().resolve()
    if not (root / marker).exists():
        raise OfficialCodeMissing(
            f"skipped: {root} is not a checkout of the official {what} code (no {marker})"
        )
    return root


@contextlib.contextmanager
def _official_imports(root: Path):
    """Imports resolve inside the official checkout (its modules read data files relative to the cwd)."""
    cwd = os.getcwd()
    sys.path.insert(0, str(root))
    os.chdir(root)
    try:
        yield
    except ModuleNotFoundError as e:
        raise OfficialCodeMissing(
            f"skipped: the official code needs the package {e.name!r}; see experiments/benchmarks/README.md"
        ) from e
    finally:
        os.chdir(cwd)


def _bare_package(name: str, folder: Path) -> None:
    """Registers package `name` at `folder` without running its __init__ (it may import unused extras)."""
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(folder)]
    sys.modules.setdefault(name, pkg)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _autocast(device: str, dtype: str):
    import torch

    if dtype == "bfloat16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def official_trg_step(root: Path, B: int, device: str, dtype: str) -> Callable[[], None]:
    """One official TRG train step (train.py's loss, Adam lr 1e-4) on a fixed random batch."""
    import torch

    with _official_imports(root):
        import models.trg_model.trg as trg_module
        from models.trg_loss import keypoint_2d_loss, keypoint_3d_loss, mesh_edge_loss, rotation_matrix_loss
        from models.trg_model.core.cfgs import parse_args
        from util.pkl import read_pkl

        # Random init: the ImageNet download changes no cost.
        encoder = trg_module.get_resnet_encoder
        trg_module.get_resnet_encoder = lambda cfg, **kw: encoder(cfg, pretrain=False, **kw)
        config = parse_args("models/trg_model/configs/trg_face_config.yaml")
        init = read_pkl("data/init_vtx_cam.pkl")
        model = trg_module.load_trg(config, init["t_vtx_1220"], init["R_t"]).to(device)
        tri_index = torch.tensor(np.load("data/triangles.npy").astype(np.int64), device=device)
        lmk68_idx = np.load("npy/kpt_ind.npy").tolist()
    kpt5_idx = [39, 42, 33, 48, 54]
    S, V = config.MODEL.TRG.INPUT_IMG_SIZE, 1220
    g = torch.Generator().manual_seed(0)

    def rand(*shape, lo=-1.0, hi=1.0):
        return (torch.rand(*shape, generator=g) * (hi - lo) + lo).to(device)

    f, c = 600.0, 400.0
    K = torch.tensor([[f, 0, 0], [0, f, 0], [c, c, 1], [0, 0, 0]], device=device).expand(B, 4, 3).contiguous()
    K_crop = torch.tensor([[S * 2.0, 0, 0], [0, S * 2.0, 0], [S / 2, S / 2, 1], [0, 0, 0]], device=device)
    ones = torch.ones(B, V, 1, device=device)
    vtx_world = torch.cat([rand(B, V, 3, lo=-0.1, hi=0.1), ones], -1)
    vtx_cam = vtx_world + torch.tensor([0.0, 0.0, 0.6, 0.0], device=device)
    batch = dict(
        img=rand(B, 3, S, S), K=K, K_crop=K_crop.expand(B, 4, 3).contiguous(),
        bbox_info=torch.tensor([250.0, 250, 550, 550, 600, 800, 800], device=device).repeat(B, 1),
        R_t=torch.eye(4, device=device).expand(B, 4, 4).contiguous(), vtx_world=vtx_world, vtx_cam=vtx_cam,
        vtx_img=torch.cat([rand(B, V, 2, lo=300, hi=500), ones], -1),
        lmk68_crop=torch.cat([rand(B, 68, 2, lo=-0.5, hi=0.5), torch.ones(B, 68, 1, device=device)], -1),
        has_3d_vtx=torch.ones(B, device=device), has_rot=torch.ones(B, device=device),
    )
    # train.py's defaults (options/train_options.py).
    w = dict(world=10.0, cam=1.0, img=0.001, loop=0.25, rot=1.0, lmk68=1.25, lmk5=1.0, edge=0.1)
    l1, mse = torch.nn.L1Loss(reduction="none"), torch.nn.MSELoss(reduction="none")
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999))
    model.train()

    def loss_fn() -> torch.Tensor:
        preds_dict, _ = model(batch["img"], batch["K_crop"], batch["bbox_info"])
        bbox_info, loss = batch["bbox_info"], 0.0
        n = len(preds_dict["output"])
        for i in range(1, n):
            p = preds_dict["output"][i]
            weight = w["loop"] ** (n - 1 - i)
            has_3d, has_rot = batch["has_3d_vtx"], batch["has_rot"]
            lw = keypoint_3d_loss(l1, p["pred_face_world"], batch["vtx_world"], has_3d, device) * w["world"]
            lc = keypoint_3d_loss(l1, p["pred_face_cam"], batch["vtx_cam"], has_3d, device) * w["cam"]
            img = torch.bmm(p["pred_face_cam"], batch["K"][:, :3, :3])
            img = (img / img[:, :, [2]])[:, :, :2]
            li = keypoint_2d_loss(l1, img, batch["vtx_img"]) * w["img"]
            pt5 = img[:, lmk68_idx, :][:, kpt5_idx, :].clone()
            pt5[:, :, 0] = pt5[:, :, 0] - bbox_info[:, [0]]
            pt5[:, :, 1] = pt5[:, :, 1] - bbox_info[:, [1]]
            pt5 = pt5 * (S / (bbox_info[:, 2] - bbox_info[:, 0]))[:, None, None] / S * 2 - 1
            l5 = keypoint_2d_loss(l1, pt5, batch["lmk68_crop"][:, kpt5_idx, :]) * w["lmk5"]
            lr = rotation_matrix_loss(mse, p["pred_R_t"][:, :3, :3], batch["R_t"][:, :3, :3], has_rot, device)
            le = (
                mesh_edge_loss(l1, p["pred_face_world"], batch["vtx_world"], tri_index, has_3d) * w["edge"]
                if i == n - 1 else 0.0
            )
            loss = loss + (lw + lc + lr.mean() * w["rot"] + li + le + l5) * weight
        return loss + keypoint_2d_loss(l1, preds_dict["pred_lmk68"][-1], batch["lmk68_crop"]) * w["lmk68"]

    def step() -> None:
        with _autocast(device, dtype):
            loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)

    return step


def official_dad3dnet_step(root: Path, B: int, device: str, dtype: str) -> Callable[[], None]:
    """One official DAD-3DNet train step (FlameRegression, IoU heatmap + landmark losses, Adam lr 1e-4)."""
    import torch

    with _official_imports(root):
        # pytorchcv's model_provider imports every model, one of which needs torchvision's compiled ops;
        # the official encoder only asks it for resnet50, so resolve that one directly.
        from pytorchcv.models.resnet import resnet50

        provider = types.ModuleType("pytorchcv.model_provider")
        provider.get_model = lambda name, pretrained=False: {"resnet50": resnet50}[name](
            pretrained=pretrained
        )
        sys.modules.setdefault("pytorchcv.model_provider", provider)
        # layers.py imports pytorch_toolbelt (and through it torchvision and OpenCV) only for heads that
        # FlameRegression does not build.
        sys.modules.setdefault("pytorch_toolbelt", types.ModuleType("pytorch_toolbelt"))
        sys.modules.setdefault("pytorch_toolbelt.modules", types.ModuleType("pytorch_toolbelt.modules"))
        # The packages' __init__ files import the training data pipeline (OpenCV, albumentations, hydra).
        for pkg in ("model_training", "model_training.data", "model_training.losses", "model_training.model"):
            _bare_package(pkg, root.joinpath(*pkg.split(".")))
        from model_training.data.config import OUTPUT_2D_LANDMARKS, OUTPUT_LANDMARKS_HEATMAP
        from model_training.losses.keypoint_losses import IoULoss
        from model_training.losses.landmarks_loss_w_visibility import LandmarksLossWVisibility
        from model_training.model.flame_regression import FlameRegression

        model_config = dict(
            backbone="resnet50", pretrained=False, num_filters=256, num_channels=3, num_classes=68,
            img_size=256, conv_block="regular", limit_value=3,
        )
        model = FlameRegression(model_config, {}, num_classes=68).to(device)
    S = 256
    g = torch.Generator().manual_seed(0)
    image = torch.randn(B, 3, S, S, generator=g).to(device)
    heatmap = (torch.rand(B, 68, S // 4, S // 4, generator=g) ** 8).to(device)
    landmarks = torch.rand(B, 68, 2, generator=g).to(device)
    presence = torch.ones(B, 68, device=device)
    iou, lmk = IoULoss(), LandmarksLossWVisibility("smooth_l1")
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def step() -> None:
        with _autocast(device, dtype):
            out = model(image)
            # train_loss.yaml's weights.
            loss = iou(out[OUTPUT_LANDMARKS_HEATMAP], heatmap) + 100.0 * lmk(
                [out[OUTPUT_2D_LANDMARKS], presence], [landmarks, presence]
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)

    return step


def alternate(
    a: Callable[[], None], b: Callable[[], None], rounds: int, warmup: int = 1
) -> tuple[float, float]:
    """Median seconds of `a` and of `b`, timed A B A B ... after `warmup` calls of each."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(rounds):
        for fn, ts in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def compare_step(args: argparse.Namespace) -> str:
    from experiments.benchmarks import train_bench

    marker = "models/trg_model/trg.py" if args.model == "trg" else "model_training/model/flame_regression.py"
    root = _require(args.official_dir, marker, args.model)
    build = official_trg_step if args.model == "trg" else official_dad3dnet_step
    official = build(root, args.batch, args.device, args.dtype)
    ours = train_bench.prepare(args.model, None, args.batch, args.dtype)
    t_off, t_ours = alternate(official, ours.run, args.rounds)
    px = {"trg": 192, "dad3dnet": 256}[args.model]
    what = f"{'TRG' if args.model == 'trg' else 'DAD-3DNet'} train step, {px} px"
    if args.xla_cpu_flags:
        what += f" ({args.xla_cpu_flags})"
    # Model FLOP utilisation against the accelerator's dense bf16 peak; meaningless on a CPU.
    mfu = f"{100 * ours.flops / t_ours / (1e12 * args.peak_tflops):.1f} %" if args.device != "cpu" else "-"
    gflop = ours.flops / 1e9
    print(f"{what}: official {t_off:.3f} s, jaxhead {t_ours:.3f} s, {gflop:.1f} GFLOP/step, MFU {mfu}")
    return row(what, args.batch, args.dtype, args.batch / t_off, args.batch / t_ours, mfu)


def compare_lbs(args: argparse.Namespace) -> list[str]:
    import jax
    import jax.numpy as jnp
    import torch

    try:
        from smplx.lbs import lbs as smplx_lbs
    except ModuleNotFoundError as e:
        raise OfficialCodeMissing(
            "skipped: --smplx needs the smplx package; see experiments/benchmarks/README.md"
        ) from e
    from flame_jax import lbs
    from flame_jax.synthetic import head_model

    model = head_model(0)
    V, K = model.shapedirs.shape[0], model.shapedirs.shape[-1]
    dev = args.device
    t = dict(
        v_template=torch.tensor(np.asarray(model.v_template), device=dev),
        shapedirs=torch.tensor(np.asarray(model.shapedirs), device=dev),
        posedirs=torch.tensor(np.asarray(model.posedirs).reshape(V * 3, -1).T.copy(), device=dev),
        J_regressor=torch.tensor(np.asarray(model.J_regressor), device=dev),
        parents=torch.tensor(np.asarray(model.parents), dtype=torch.long, device=dev),
        lbs_weights=torch.tensor(np.asarray(model.weights), device=dev),
    )
    fn = jax.jit(lambda m, b, p: lbs(m, b, p)[0])
    rows = []
    for B in args.lbs_batches:
        rng = np.random.default_rng(0)
        betas = rng.normal(0, 1, (B, K)).astype(np.float32)
        pose = rng.normal(0, 0.2, (B, 15)).astype(np.float32)
        tb, tp = torch.tensor(betas, device=dev), torch.tensor(pose, device=dev)
        jb, jp = jnp.asarray(betas), jnp.asarray(pose)

        def official() -> None:
            with torch.no_grad():
                smplx_lbs(tb, tp, **t)
            _sync(dev)

        def ours() -> None:
            jax.block_until_ready(fn(model, jb, jp))

        with torch.no_grad():
            ref = smplx_lbs(tb, tp, **t)[0].cpu().numpy()
        err = float(np.abs(np.asarray(fn(model, jb, jp)) - ref).max())
        reps = max(1, min(50, 2048 // B))  # batch the tiny calls so one timing is not all dispatch noise
        t_off, t_ours = alternate(
            lambda: [official() for _ in range(reps)],
            lambda: [ours() for _ in range(reps)],
            args.rounds,
            warmup=2,
        )
        ms_off, ms_ours = 1e3 * t_off / reps, 1e3 * t_ours / reps
        print(f"LBS B={B}: smplx {ms_off:.2f} ms, jaxhead {ms_ours:.2f} ms, max |diff| {err:.1e} m")
        what = f"FLAME LBS ({V} verts, {K} comps) vs smplx"
        rows.append(row(what, B, "float32", B * reps / t_off, B * reps / t_ours, "-"))
    return rows


def machine() -> str:
    import jax
    import torch

    d = jax.devices()[0]
    where = d.device_kind if d.platform != "cpu" else f"{os.cpu_count()}-core {platform.machine()} CPU"
    return f"{where}, torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__}"


@functools.cache
def commit() -> str:
    """The jaxhead commit measured, marked + when the tree has changes (other than recorded results)."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!*RESULTS.md")
    return (git("rev-parse", "--short", "HEAD") or "?") + ("+" if changed else "")


def row(what: str, batch: int, dtype: str, official: float, ours: float, mfu: str) -> str:
    # The 1-minute load average: other jobs on the machine slow both sides, not always equally.
    return (
        f"| {what} | {batch} | {dtype} | {official:,.2f} | {ours:,.2f} | {ours / official:.2f}x | {commit()} "
        f"| {mfu} | {os.getloadavg()[0]:.1f} | {machine()} |"
    )


def record(rows: list[str]) -> None:
    """Adds rows to the section's table, replacing those of the same (what, batch, dtype, machine)."""
    from experiments.benchmarks.results_file import RESULTS

    text = RESULTS.read_text() if RESULTS.exists() else ""
    old: list[str] = []
    notes = ""
    if SECTION in text:
        body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
        old = [ln for ln in body.split("\n") if ln.startswith("| ") and not ln.startswith("| what")]
        notes = body.split(TABLE_HEAD, 1)[0] if TABLE_HEAD in body else "\n"

    def key(ln: str) -> tuple[str, ...]:
        c = [x.strip() for x in ln.split("|")]
        return (c[1], c[2], c[3], c[7], c[-2])

    new = {key(r) for r in rows}
    lines = [ln for ln in old if key(ln) not in new] + rows
    write_section(SECTION, SECTION + notes + TABLE_HEAD + "\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("trg", "dad3dnet"), help="compare this model's train step")
    p.add_argument("--official_dir", help="checkout of the official repository of --model")
    p.add_argument("--smplx", action="store_true", help="compare flame_jax.lbs with smplx.lbs.lbs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lbs_batches", type=int, nargs="+", default=[1, 64, 1024])
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="torch device (jax: default)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads on the CPU")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--peak_tflops", type=float, default=989.0, help="peak for MFU (H100/H200 dense bf16)")
    p.add_argument("--xla_cpu_flags", default="", help="XLA options for jaxhead (config.train.xla_cpu_flags)")
    p.add_argument("--write", action="store_true", help="record the rows in RESULTS.md")
    args = p.parse_args()
    if not args.model and not args.smplx:
        p.error("give --model and/or --smplx")
    commit()  # the code measured is the code at the start
    try:
        import torch
    except ModuleNotFoundError as e:
        raise OfficialCodeMissing(
            "skipped: the comparison needs torch; see experiments/benchmarks/README.md"
        ) from e
    torch.set_num_threads(args.threads)
    from jaxhead.training.xla_flags import add_xla_flags

    add_xla_flags(args.xla_cpu_flags)
    rows = ([compare_step(args)] if args.model else []) + (compare_lbs(args) if args.smplx else [])
    print(TABLE_HEAD + "\n".join(rows))
    if args.write:
        record(rows)


if __name__ == "__main__":
    main()
