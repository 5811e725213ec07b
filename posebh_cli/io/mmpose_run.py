"""An imported ViTPose / ViTPose++ / PoseBH checkpoint as a posebh model and run directory.

The run directory has the files a trained run has (DESIGN.md): recipe.resolved.toml,
model.safetensors and run.json (step 0, plus where the weights came from and which file keys had
no place), so `posebh eval` / `predict` / `export` use it directly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from posebh_cli.errors import PosebhError
from posebh_cli.io.mmpose_import import (
    REFERENCE_DATASETS,
    CheckpointLayout,
    ConvertedState,
    convert_state_dict,
    read_layout,
    resolve_arch,
)
from posebh_cli.io.safe_checkpoint import extract_state_dict, load_checkpoint_object

# The reference six-dataset mixture (METHOD.md §4-5): roots and files as the ViTPose++ / PoseBH
# data layout names them, relative to the folder posebh runs from.
_COCO_DET = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "coco": {"root": "data/coco", "encoding": "udp",
             "train": {"ann": "annotations/person_keypoints_train2017.json",
                       "images": "train2017"},
             "val": {"ann": "annotations/person_keypoints_val2017.json", "images": "val2017",
                     "boxes": _COCO_DET}},
    "aic": {"root": "data/aic",
            "train": {"ann": "annotations/aic_train.json",
                      "images": "ai_challenger_keypoint_train_20170902/"
                                "keypoint_train_images_20170902"},
            "val": {"ann": "annotations/aic_val.json",
                    "images": "ai_challenger_keypoint_validation_20170911/"
                              "keypoint_validation_images_20170911"}},
    "mpii": {"root": "data/mpii", "encoding": "udp", "half_body": False,
             "train": {"ann": "annotations/mpii_train.json", "images": "images"},
             "val": {"ann": "annotations/mpii_val.json", "images": "images"}},
    "ap10k": {"root": "data/ap10k",
              "train": {"ann": "annotations/ap10k-train-split1.json", "images": "data"},
              "val": {"ann": "annotations/ap10k-val-split1.json", "images": "data"},
              "test": {"ann": "annotations/ap10k-test-split1.json", "images": "data"}},
    "apt36k": {"root": "data/apt36k",
               "train": {"ann": "annotations/apt36k_train.json", "images": "images"},
               "val": {"ann": "annotations/apt36k_val.json", "images": "images"},
               "test": {"ann": "annotations/apt36k_test.json", "images": "images"}},
    "coco_wholebody": {"root": "data/coco",
                       "train": {"ann": "annotations/coco_wholebody_train_v1.0.json",
                                 "images": "train2017"},
                       "val": {"ann": "annotations/coco_wholebody_val_v1.0.json",
                               "images": "val2017", "boxes": _COCO_DET}},
}
# PoseBH's three stages (METHOD.md §4), so the imported run can be trained on with its recipe.
REFERENCE_STAGES: list[dict[str, Any]] = [
    {"name": "prototypes", "epochs": 50, "train": ["embedding_head"], "prototypes": "learn"},
    {"name": "css_heads", "epochs": 40, "train": ["keypoint_heads", "embedding_head"],
     "prototypes": "frozen", "css": True, "lr_scale": 0.1},
    {"name": "finetune", "epochs": 10,
     "train": ["backbone", "keypoint_heads", "embedding_head"], "prototypes": "frozen",
     "css": True, "lr_scale": 0.01},
]


@dataclass
class ImportedModel:
    """A PoseBHModel holding a checkpoint's weights, with the recipe that rebuilds it.

    unmapped: file keys with no place in the model; initialised: model keys the file did not
    provide (left at the recipe's seeded init, e.g. the embedding head of a ViTPose++ file).
    """

    model: Any  # PoseBHModel
    recipe: Any  # Recipe
    types: Any  # KeypointTypeTable
    layout: CheckpointLayout
    arch: str
    source: Path
    unmapped: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def parse_datasets(spec: str | Sequence[str] | None, layout: CheckpointLayout,
                   source: str) -> list[tuple[str, str]]:
    """--datasets 'coco,aic' or 'name:skeleton,...' -> [(name, skeleton)] in expert/head order."""
    from posebh_cli.skeletons import get_skeleton

    heads = len(layout.head_keypoints)
    if spec is None or spec == "" or spec == []:
        if heads == 1 and not layout.num_experts:
            names: list[str] = ["coco"]
        elif heads == len(REFERENCE_DATASETS):
            names = list(REFERENCE_DATASETS)
        else:
            raise PosebhError(f"{source}: the file has {heads} keypoint heads; name their "
                              f"datasets in order with --datasets (e.g. coco,aic)")
    else:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        names = [item.strip() for item in items if item.strip()]
    pairs = [(n.split(":", 1)[0], n.split(":", 1)[1] if ":" in n else n) for n in names]
    if len(pairs) != heads:
        raise PosebhError(f"--datasets: {len(pairs)} names for the file's {heads} keypoint heads "
                          "(keypoint_head, then associate_keypoint_heads in order)")
    if layout.num_experts and layout.num_experts != heads:
        raise PosebhError(f"{source}: {layout.num_experts} experts but {heads} keypoint heads; "
                          "posebh pairs expert i with head i")
    for i, ((name, skeleton_name), k) in enumerate(zip(pairs, layout.head_keypoints)):
        skeleton = get_skeleton(skeleton_name)
        if skeleton.num_keypoints != k:
            head = "keypoint_head" if i == 0 else f"associate_keypoint_heads.{i - 1}"
            raise PosebhError(f"{source}: {head} predicts {k} keypoints but dataset '{name}' "
                              f"uses skeleton '{skeleton_name}' with {skeleton.num_keypoints}; "
                              "check the --datasets order (expert order)")
    return pairs


def _input_size_override(overrides: Sequence[str]) -> tuple[int, int] | None:
    from posebh_cli.recipe import parse_override

    size = None
    for text in overrides:
        parts, value = parse_override(text)
        if parts == ["model", "input_size"] and isinstance(value, list) and len(value) == 2:
            size = (int(value[0]), int(value[1]))
    return size


def read_base_recipe(path: str | Path) -> dict[str, Any]:
    """Raw table of a recipe file whose datasets (and training settings) the import takes."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PosebhError(f"--recipe {path}: file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PosebhError(f"--recipe {path}: not a readable TOML recipe ({error})") from None
    entries = table.get("datasets")
    if not isinstance(entries, list) or not all(
            isinstance(d, dict) and isinstance(d.get("name"), str)
            and isinstance(d.get("skeleton"), str) for d in entries):
        raise PosebhError(f"--recipe {path}: needs [[datasets]] entries with name and skeleton")
    return table


def import_recipe_table(name: str, layout: CheckpointLayout, arch: str,
                        datasets: Sequence[tuple[str, str]],
                        base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Recipe table (before --set overrides) whose model matches the checkpoint's shapes.

    base: a recipe table whose datasets, stages and settings are kept (its model section is
    overridden by the checkpoint's shapes); None: the reference defaults per dataset name.
    """
    from posebh_cli.models.vit import ARCHS

    spec = ARCHS[arch]
    model: dict[str, Any] = {
        "backbone": arch, "input_size": list(layout.input_size),
        "heatmap_size": list(layout.heatmap_size), "patch_size": layout.patch_size,
        "moe": layout.num_experts > 0, "expert_dim": layout.expert_dim or spec.expert_dim,
        "drop_path": spec.drop_path, "head_channels": layout.head_channels,
        "head_deconvs": layout.head_deconvs,
    }
    if layout.prototypes is not None:
        _, per_type, dim = layout.prototypes
        model.update(prototypes_per_type=per_type, embedding_dim=dim)
    if layout.embed_head_channels is not None:
        model["embed_head_channels"] = layout.embed_head_channels
    if base is not None:
        kept = {k: v for k, v in base.get("model", {}).items() if k != "pretrained"}
        # The reference heads were trained with MSE on Gaussian targets: their outputs are
        # heatmaps, not softmax logits, whatever loss the base recipe trains with.
        loss = {**base.get("loss", {}), "keypoint": "mse"}
        return {**base, "name": name, "model": {**kept, **model}, "loss": loss,
                "stages": base.get("stages", REFERENCE_STAGES)}
    entries = []
    for dataset, skeleton in datasets:
        entry: dict[str, Any] = {"name": dataset, "skeleton": skeleton}
        entry.update(DATASET_DEFAULTS.get(dataset, {}))
        entries.append(entry)
    table: dict[str, Any] = {"name": name, "seed": 0, "model": model, "datasets": entries,
                             "stages": REFERENCE_STAGES}
    if arch == "huge":
        table["optimizer"] = {"layer_decay": 0.8}  # METHOD.md §4: 0.8 for ViT-H
    return table


def _select_tensors(imported: ImportedModel, own: dict[str, Tensor],
                    tensors: dict[str, Tensor], sources: dict[str, str],
                    folded: list[str]) -> dict[str, Tensor]:
    """The converted tensors that go into the model (`own`: its state dict, possibly on the meta
    device). Whole parts must be present (the embedding head may stay at its init, reported);
    shapes must match. Records unmapped / initialised keys on `imported`."""
    for key in [k for k in tensors if k not in own]:
        imported.unmapped.append(sources.pop(key))
        del tensors[key]
    for key, value in tensors.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise PosebhError(f"{imported.source}: '{sources[key]}' has shape "
                              f"{tuple(value.shape)}, the model needs {tuple(own[key].shape)}")
    absent = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
    embed = [k for k in own if k.startswith("embedding_head.")]
    embed_missing = [k for k in absent if k.startswith("embedding_head.")]
    if embed_missing and len(embed_missing) < len(embed):
        # A partial embedding head would be a silent mix of trained and random layers.
        imported.notes.append(f"embedding head left at init: the file's proto_head lacks "
                              f"{embed_missing[0]} (different neck/head design)")
        for key in [k for k in tensors if k.startswith("embedding_head.")]:
            imported.unmapped.append(sources.pop(key))
            del tensors[key]
        imported.unmapped.extend(folded)
    required = [k for k in absent if k.startswith(("backbone.", "heads."))]
    if required:
        raise PosebhError(f"{imported.source}: the checkpoint has no tensor for '{required[0]}' "
                          f"({len(required)} model tensors missing)")
    imported.unmapped.sort()
    imported.initialised = sorted(k for k in own if k not in tensors
                                  and not k.endswith("num_batches_tracked"))
    return {k: v.to(own[k].dtype) for k, v in tensors.items()}


def _build_loaded_model(recipe: Any, types: Any, imported: ImportedModel,
                        converted: ConvertedState) -> Any:
    """The recipe's model holding the converted tensors.

    When the file covers every tensor, the model is built on the meta device and the file's
    tensors are assigned (no random init of ~100M parameters, no copy); otherwise it is built
    normally (seeded init for what the file lacks) and the tensors are copied in.
    """
    import torch

    from posebh_cli.engine.build import build_recipe_model

    with torch.device("meta"):
        skeleton_model = build_recipe_model(recipe, types)
    own = skeleton_model.state_dict()
    tensors = _select_tensors(imported, own, converted.tensors, converted.sources,
                              converted.folded)
    if not imported.initialised:
        for key in own:
            if key not in tensors:  # BN counters some files lack
                tensors[key] = torch.zeros((), dtype=own[key].dtype)
        skeleton_model.load_state_dict(tensors, strict=True, assign=True)
        # The one non-persistent buffer (not in any state dict): type ids per dataset.
        skeleton_model.type_offsets = torch.as_tensor(types.offsets[:-1], dtype=torch.int64)
        if not any(t.is_meta for t in [*skeleton_model.parameters(),
                                       *skeleton_model.buffers()]):
            return skeleton_model
    model = build_recipe_model(recipe, types)
    model.load_state_dict({**model.state_dict(), **tensors}, strict=True)
    return model


def load_mmpose_model(path: str | Path, *, arch: str | None = None,
                      datasets: str | Sequence[str] | None = None,
                      recipe: str | Path | None = None, overrides: Sequence[str] = (),
                      name: str | None = None) -> ImportedModel:
    """Build the posebh model of an mmpose checkpoint and load its weights (no files written).

    datasets: names (or name:skeleton) in expert order; recipe: a recipe file whose datasets
    (in expert order) and settings the run takes instead; overrides: --set KEY=VALUE.
    """
    from posebh_cli.engine.build import type_table_of
    from posebh_cli.recipe import recipe_from_table

    start = time.perf_counter()
    path = Path(path)
    if recipe is not None and datasets:
        raise PosebhError("give --datasets or --recipe (whose datasets are used), not both")
    base = read_base_recipe(recipe) if recipe is not None else None
    if base is not None:
        datasets = [f"{d['name']}:{d['skeleton']}" for d in base["datasets"]]
    state = extract_state_dict(load_checkpoint_object(path), str(path))
    layout = read_layout(state, str(path), _input_size_override(overrides))
    arch_name = resolve_arch(arch, layout, str(path))
    pairs = parse_datasets(datasets, layout, str(path))
    table = import_recipe_table(name or path.stem, layout, arch_name, pairs, base)
    recipe = recipe_from_table(table, f"import of {path.name}", list(overrides))
    recipe = recipe.with_absolute_paths()
    types = type_table_of(recipe)
    if layout.prototypes is not None and layout.prototypes[0] != types.num_types:
        raise PosebhError(f"{path}: the prototype table has {layout.prototypes[0]} keypoint types "
                          f"but the datasets {[d for d, _ in pairs]} have {types.num_types}")
    imported = ImportedModel(None, recipe, types, layout, arch_name, path)
    converted = convert_state_dict(state, layout, [d for d, _ in pairs])
    imported.unmapped = list(converted.unmapped)
    imported.model = _build_loaded_model(recipe, types, imported, converted).eval()
    imported.seconds = time.perf_counter() - start
    return imported


def imported_run_info(imported: ImportedModel) -> dict[str, Any]:
    """run.json content: the fields a trained run has (step 0) plus the import report."""
    from posebh_cli import __version__
    from posebh_cli.engine.provenance import git_sha

    recipe, model, types = imported.recipe, imported.model, imported.types
    table = model.prototype_table
    return {
        "recipe": recipe.name,
        "version": __version__,
        "git_sha": git_sha(),
        "step": 0,
        "total_steps": 0,
        "stage": "imported",
        "steps_per_epoch": 0,
        "model": {"backbone": recipe.model.backbone, "depth": len(model.backbone.blocks),
                  "input_size": list(recipe.model.input_size),
                  "heatmap_size": list(recipe.model.heatmap_size)},
        "datasets": [{"name": d.name, "skeleton": d.skeleton, "encoding": d.encoding,
                      "num_keypoints": s.num_keypoints, "head": f"heads.{d.name}"}
                     for d, s in zip(recipe.datasets, types.skeletons)],
        "keypoint_types": types.to_dict(),
        "prototypes": None if table is None else {
            "shape": list(table.prototypes.shape), "tensor": "prototype_table.prototypes"},
        "validation": {},
        "imported_from": str(imported.source.resolve()),
        "import": {"format": "mmpose", "kind": imported.layout.kind, "arch": imported.arch,
                   "experts": imported.layout.num_experts,
                   "unmapped": imported.unmapped, "initialised": imported.initialised,
                   "notes": imported.notes},
    }


def check_run_target(out: Path, force: bool) -> None:
    """PosebhError when `out` cannot take the run (checked before the slow load)."""
    from posebh_cli.engine import run_dir as rd

    if out.exists() and not out.is_dir():
        raise PosebhError(f"--out {out}: exists and is not a folder")
    if (out / rd.WEIGHTS_FILE).exists() and not force:
        raise PosebhError(f"{out} already holds a run; pass --force to replace it or choose "
                          "another --out")


def write_imported_run(imported: ImportedModel, out: str | Path, *, force: bool = False) -> Path:
    """recipe.resolved.toml, model.safetensors, then run.json (last: it names a complete run)."""
    from posebh_cli.engine import run_dir as rd
    from posebh_cli.io.atomic import atomic_write_text
    from posebh_cli.io.checkpoint import save_run_info, save_weights

    out = Path(out)
    check_run_target(out, force)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / rd.RECIPE_FILE, imported.recipe.to_toml())
    save_weights(out / rd.WEIGHTS_FILE, imported.model)
    save_run_info(out / rd.RUN_INFO_FILE, imported_run_info(imported))
    rd.point_latest_at(out)
    return out


def import_checkpoint(path: str | Path, out: str | Path, *, arch: str | None = None,
                      datasets: str | Sequence[str] | None = None,
                      recipe: str | Path | None = None, overrides: Sequence[str] = (),
                      force: bool = False) -> ImportedModel:
    """Import an mmpose checkpoint into the run directory `out` (the recipe is named after it)."""
    out = Path(out)
    check_run_target(out, force)
    imported = load_mmpose_model(path, arch=arch, datasets=datasets, recipe=recipe,
                                 overrides=overrides, name=out.name or None)
    write_imported_run(imported, out, force=force)
    return imported
