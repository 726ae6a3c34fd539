"""Contact sheet of what a model sees: `python -m data_pipelines.show NAME --split train --n 16 --out sheet.png`.

Draws the preprocessed crops (augmented for `--split train`) with the landmarks, the mesh as a
wireframe and the head pose axes on top, through the TRG (`--model trg`, default) or DAD-3DNet
(`--model dad3dnet`) pipeline.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import ml_collections
import numpy as np

from data_pipelines.build import ensure_built
from data_pipelines.pipelines import make_dataset
from jaxhead import visualize

GL_FLIP = np.diag([1.0, -1.0, -1.0])


def load_config(model: str, dataset: str, builder_config: str | None, data_dir: str | None) -> ml_collections.ConfigDict:
    path = Path(__file__).resolve().parents[1] / "configs" / f"{model}.py"
    spec = importlib.util.spec_from_file_location(f"configs_{model}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(None)
    config.data.dataset = dataset
    config.data.builder_config = builder_config if builder_config is not None else ("small" if dataset == "synthetic_heads" else "")
    config.data.data_dir = data_dir or ""
    config.data.num_workers = 0
    return config


def draw_trg(ax, batch: dict[str, np.ndarray], i: int, edges: np.ndarray) -> None:
    size = batch["img"].shape[1]
    visualize.show_image(ax, visualize.denormalize(batch["img"][i]), str(batch["id"][i]))
    K = batch["K_crop"][i]
    if batch["has_3d_vtx"][i] > 0:
        visualize.draw_wireframe(ax, visualize.project(batch["vtx_cam"][i], K), edges)
    if batch["has_rot"][i] > 0:
        visualize.draw_axes(ax, batch["R"][i], batch["t"][i], K, lw=1.2)
    lmk = batch["lmk68_crop"][i]
    visualize.draw_landmarks(ax, (lmk[lmk[:, 2] > 0, :2] + 1.0) / 2.0 * size, size=3)


def draw_dad(ax, batch: dict[str, np.ndarray], i: int, edges: np.ndarray) -> None:
    size = batch["image"].shape[1]
    visualize.show_image(ax, visualize.denormalize(batch["image"][i]), str(batch["id"][i]))
    heat = batch["heatmap"][i].max(-1)
    ax.imshow(heat, extent=(0, size, size, 0), cmap="magma", alpha=0.35 * (heat > 0.05))
    visualize.draw_wireframe(ax, batch["vertices_2d"][i], edges, alpha=0.2)
    present = batch["presence"][i] > 0
    visualize.draw_landmarks(ax, batch["landmarks"][i][present] * size, size=3)
    # Pose axes: DAD's rotation maps model axes into the crop (x right, y down).
    R = (GL_FLIP @ batch["model_view_matrix"][i][:3, :3])
    origin = batch["vertices_2d"][i].mean(0)
    for k, colour in enumerate(visualize.AXIS_COLOURS):
        end = origin + 0.25 * size * R[:2, k] / max(np.linalg.norm(R[:, k]), 1e-9)
        ax.plot(*zip(origin, end), color=colour, linewidth=1.2)


def contact_sheet(config: ml_collections.ConfigDict, split: str, n: int, out: Path, seed: int = 0) -> Path:
    train = split == "train"
    # The numpy reference draws the same augmentation as the device (tests/data_pipelines/test_device_augment.py).
    config = config.copy_and_resolve_references()
    config.data.device_augment = False
    batch = next(iter(make_dataset(config, split, train=train, batch_size=n, seed=seed, num_epochs=1)))
    fig, axes = visualize.image_grid(len(batch["id"]), cols=min(n, 8))
    if config.model.name == "trg":
        from data_pipelines.topology import load_topology

        edges = visualize.mesh_edges(load_topology(config.data, config.model).triangles)
        draw = draw_trg
    else:
        from jaxhead.tasks.dad3dnet import load_flame_model

        model = load_flame_model(config)
        faces = np.asarray(model.faces)
        head = set(np.asarray(model.subsets["face_w_ears"]).tolist())
        edges = visualize.mesh_edges(faces[np.all(np.isin(faces, list(head)), axis=1)])[::2]
        draw = draw_dad
    for i, ax in enumerate(axes[: len(batch["id"])]):
        draw(ax, batch, i, edges)
    return visualize.save_figure(fig, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="dataset name (e.g. synthetic_heads)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--out", default="sheet.png")
    parser.add_argument("--model", choices=("trg", "dad3dnet"), default="trg", help="whose pipeline to show")
    parser.add_argument("--config", default=None, help="builder config (synthetic_heads: tiny, small, default)")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--manual_dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = load_config(args.model, args.name, args.config, args.data_dir)
    ensure_built(args.name, config.data.builder_config or None, args.data_dir, args.manual_dir)
    print(contact_sheet(config, args.split, args.n, Path(args.out), args.seed))


if __name__ == "__main__":
    main()
