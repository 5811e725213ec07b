"""Recipes: one TOML file -> a frozen, validated `Recipe`.

Config flow (DESIGN.md): built-in defaults < recipe file < `--set a.b=c` overrides. Everything is
validated once, here, with key paths in the messages; later code trusts the dataclasses.
Relative dataset paths are relative to the working directory where the command runs; the
resolved recipe written into a run directory holds them as absolute paths.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posebh_cli.config_schema import build_dataclass, dataclass_to_table, rule, unknown_key_error
from posebh_cli.errors import PosebhError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BACKBONES = ("tiny", "small", "base", "large", "huge")
PARTS = ("backbone", "keypoint_heads", "embedding_head")
DATASET_FORMATS = ("coco", "aic", "mpii", "ap10k", "apt36k", "apt36k_raw", "coco_wholebody",
                   "interhand", "onehand10k", "ochuman", "synthetic")
ENCODINGS = ("msra", "udp")
DECODERS = ("heads", "prototypes")
HEATMAP_DECODERS = ("auto", "shift", "udp", "dark_udp")
POS_EMBED_INITS = ("random", "sincos")  # timm's noise, or MAE's fixed 2-D sin-cos table


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = rule("base", choices=BACKBONES)
    input_size: tuple[int, int] = rule((256, 192), min=16, help="(height, width)")
    heatmap_size: tuple[int, int] = rule((64, 48), min=4, help="(height, width)")
    patch_size: int = rule(16, min=2)
    stem_channels: tuple[int, ...] = rule(
        (), min=1, help="conv stem widths (log2(patch_size) stride-2 convs); empty = patch conv")
    pos_embed_init: str = rule("random", choices=POS_EMBED_INITS)
    moe: bool = True
    expert_dim: int = rule(192, min=1, help="P: output rows of each dataset expert")
    drop_path: float = rule(0.3, min=0.0, max=1.0)
    head_channels: int = rule(256, min=1)
    head_deconvs: int = rule(2, min=0, max=4)
    embed_head_channels: int = rule(256, min=1)
    embed_res_channels: int = rule(64, min=1, help="ResBlock width of the embedding head")
    embedding_dim: int = rule(64, min=1, help="F")
    prototypes_per_type: int = rule(3, min=1, help="M")
    pretrained: str = rule("", help="local timm/MAE weights file; empty = random init")
    init_from: str = rule("", help="a posebh run directory (or its model.safetensors) to start "
                                   "from: backbone, experts, heads, embedding head and "
                                   "prototypes, matched by dataset name")


@dataclass(frozen=True)
class PrototypeConfig:
    eps: float = rule(0.05, gt=0.0)
    iters: int = rule(3, min=1)
    momentum: float = rule(0.999, min=0.0, max=1.0)
    gumbel_tau: float = rule(0.5, gt=0.0)
    backend: str = rule("auto", choices=("auto", "torch", "triton"))


@dataclass(frozen=True)
class LossConfig:
    keypoint: str = rule("mse", choices=("mse", "softmax_ce"))
    sigma: float = rule(2.0, gt=0.0)
    keypoint_weight: float = rule(1.0, min=0.0)
    ppc_weight: float = rule(0.01, min=0.0)
    ppd_weight: float = rule(0.001, min=0.0)
    prototype_scale: float = rule(1.25e-5, min=0.0)
    prototype_heatmap_weight: float = rule(3.33e-6, min=0.0)
    css_scale: float = rule(1e-3, min=0.0)
    css_threshold: float = rule(0.25, min=0.0, max=1.0)
    css_match_distance: float = rule(2.1, gt=0.0)


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = rule("adamw", choices=("adamw", "adam"))
    lr: float = rule(1e-3, gt=0.0)
    betas: tuple[float, float] = rule((0.9, 0.999), min=0.0, max=1.0)
    weight_decay: float = rule(0.1, min=0.0)
    layer_decay: float = rule(0.75, gt=0.0, max=1.0)
    warmup_iters: int = rule(500, min=0)
    grad_clip: float = rule(1.0, min=0.0, help="0 disables clipping")
    lr_steps: tuple[float, ...] = rule((), min=0.0, help="epochs where the LR is multiplied")
    lr_step_factor: float = rule(0.1, gt=0.0)


@dataclass(frozen=True)
class AugmentConfig:
    flip_prob: float = rule(0.5, min=0.0, max=1.0)
    half_body_prob: float = rule(0.3, min=0.0, max=1.0)
    half_body_min_joints: int = rule(8, min=0)
    scale_sigma: float = rule(0.5, min=0.0, max=0.99,
                              help="scale ~ clip(N(1, s), 1 - s, 1 + s)")
    rotation_sigma: float = rule(40.0, min=0.0, help="degrees ~ clip(N(0, r), -2r, 2r)")
    rotation_prob: float = rule(0.6, min=0.0, max=1.0)
    center_jitter: float = rule(0.0, min=0.0, max=1.0)
    box_padding: float = rule(1.25, gt=0.0)


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = rule(64, min=1, help="per process")
    workers: int = rule(4, min=0)
    precision: str = rule("bf16", choices=("fp32", "bf16", "fp16"))
    checkpoint_every: int = rule(1000, min=0, help="steps; 0 = stage ends only")
    log_every: int = rule(20, min=1)
    cache_images: bool = rule(False, help="keep decoded images in memory (small datasets)")
    image_cache_gb: float = rule(2.0, gt=0.0, help="decoded-image cache budget per process "
                                 "and data worker; least recently used images are evicted")
    compile: bool = rule(False, help="torch.compile the backbone (for GPUs; slower on small CPUs)")
    tensorboard: bool = rule(True, help="write TensorBoard events to <run>/tensorboard when the "
                             "tensorboard package is installed")


@dataclass(frozen=True)
class EvalConfig:
    split: str = rule("val", choices=("val", "test"))
    flip_test: bool = True
    decoder: str = rule("heads", choices=DECODERS)
    heatmap_decoder: str = rule("auto", choices=HEATMAP_DECODERS,
                                help="auto: UDP for UDP-encoded datasets, shift otherwise")
    batch_size: int = rule(64, min=1)
    rescore_threshold: float = rule(0.2, min=0.0, max=1.0)
    oks_nms_threshold: float = rule(0.9, min=0.0, max=1.0)


@dataclass(frozen=True)
class SplitConfig:
    ann: str
    images: str = ""
    boxes: str = rule("gt", help="'gt' or a detection results file")
    det_score_threshold: float = rule(0.0, min=0.0, max=1.0)


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    skeleton: str
    format: str = rule("", choices=("",) + DATASET_FORMATS, help="reader; default from name")
    root: str = "."
    train: SplitConfig | None = None
    val: SplitConfig | None = None
    test: SplitConfig | None = None
    ratio: float | None = rule(None, gt=0.0, help="sampling weight; omit everywhere = by size")
    encoding: str = rule("msra", choices=ENCODINGS)
    half_body: bool = True
    box_padding: float | None = rule(None, gt=0.0,
                                     help="crop = box x this; omit = augment.box_padding")
    loss_weight: float = rule(1.0, min=0.0,
                              help="weight of this dataset's head in the keypoint loss sum")

    @property
    def reader(self) -> str:
        if self.format:
            return self.format
        return self.name if self.name in DATASET_FORMATS else "coco"

    def split(self, name: str) -> SplitConfig:
        split = getattr(self, name, None) if name in ("train", "val", "test") else None
        if split is None:
            raise PosebhError(f"dataset '{self.name}' has no '{name}' split in the recipe "
                              f"(add datasets.{name} = {{ ann = ..., images = ... }})")
        return split


@dataclass(frozen=True)
class StageConfig:
    name: str
    epochs: float = rule(0.0, min=0.0)
    steps: int = rule(0, min=0)
    train: tuple[str, ...] = rule(PARTS, choices=PARTS)
    prototypes: str = rule("learn", choices=("learn", "frozen"))
    css: bool = False
    lr_scale: float = rule(1.0, gt=0.0)


@dataclass(frozen=True)
class Recipe:
    name: str
    datasets: tuple[DatasetConfig, ...]
    stages: tuple[StageConfig, ...]
    seed: int = 0
    output_dir: str = "runs"
    model: ModelConfig = ModelConfig()
    prototypes: PrototypeConfig = PrototypeConfig()
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    def dataset(self, name: str) -> DatasetConfig:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        from posebh_cli.skeletons.registry import unknown_name_error

        raise unknown_name_error("dataset", name, [d.name for d in self.datasets])

    def box_padding(self, name: str) -> float:
        """Crop size / box size for dataset `name`: its own box_padding, else the augment one.

        Training, evaluation and prediction crop a dataset's boxes alike, so a model sees the
        same framing everywhere (a hand recipe may frame hands tighter than bodies).
        """
        own = self.dataset(name).box_padding
        return self.augment.box_padding if own is None else own

    def loss_weights(self) -> dict[str, float]:
        """Dataset name -> weight of its head in the sum of the heads' keypoint losses."""
        return {d.name: d.loss_weight for d in self.datasets}

    def to_table(self) -> dict[str, Any]:
        return dataclass_to_table(self)

    def to_toml(self) -> str:
        from posebh_cli.io.toml_writer import dumps

        return dumps(self.to_table())

    def with_absolute_paths(self, base: str | os.PathLike[str] | None = None) -> Recipe:
        """Dataset roots, model.pretrained and model.init_from made absolute against `base`
        (default: cwd)."""
        base_path = Path(base or os.getcwd())
        datasets = tuple(dataclasses.replace(d, root=str((base_path / d.root).resolve()))
                         for d in self.datasets)
        model = self.model
        for key in ("pretrained", "init_from"):
            if getattr(model, key):
                resolved = str((base_path / getattr(model, key)).resolve())
                model = dataclasses.replace(model, **{key: resolved})
        return dataclasses.replace(self, datasets=datasets, model=model)


def _validate_semantics(recipe: Recipe, source: str) -> None:
    from posebh_cli.skeletons import get_skeleton

    if not recipe.datasets:
        raise PosebhError(f"{source}: datasets: at least one [[datasets]] entry is required")
    if not recipe.stages:
        raise PosebhError(f"{source}: stages: at least one [[stages]] entry is required")
    seen: set[str] = set()
    for i, dataset in enumerate(recipe.datasets):
        if dataset.name in seen:
            raise PosebhError(f"{source}: datasets[{i}].name: '{dataset.name}' is used twice")
        seen.add(dataset.name)
        try:
            get_skeleton(dataset.skeleton)
        except PosebhError as error:
            raise PosebhError(f"{source}: datasets[{i}].skeleton: {error}") from None
    with_ratio = [d.ratio is not None for d in recipe.datasets]
    if any(with_ratio) and not all(with_ratio):
        i = with_ratio.index(False)
        raise PosebhError(f"{source}: datasets[{i}].ratio: give a ratio for every dataset or "
                          "for none (none = sample proportional to dataset size)")
    names: set[str] = set()
    for i, stage in enumerate(recipe.stages):
        if (stage.epochs > 0) == (stage.steps > 0):
            raise PosebhError(f"{source}: stages[{i}]: give exactly one of epochs > 0 or "
                              "steps > 0")
        if stage.name in names:
            raise PosebhError(f"{source}: stages[{i}].name: '{stage.name}' is used twice")
        names.add(stage.name)
    model = recipe.model
    for axis, (size, hm) in enumerate(zip(model.input_size, model.heatmap_size)):
        if size % model.patch_size:
            raise PosebhError(f"{source}: model.input_size[{axis}]: {size} is not a multiple "
                              f"of model.patch_size {model.patch_size}")
        expected = size // model.patch_size * 2 ** model.head_deconvs
        if hm != expected:
            raise PosebhError(
                f"{source}: model.heatmap_size[{axis}]: expected {expected} (input / patch x "
                f"2^head_deconvs), got {hm}")
    stem = len(model.stem_channels)
    if stem and 2**stem != model.patch_size:
        raise PosebhError(f"{source}: model.stem_channels: {stem} stride-2 convs give a stride of "
                          f"{2**stem}; model.patch_size {model.patch_size} needs "
                          f"{model.patch_size.bit_length() - 1} widths")
    if model.pretrained and model.init_from:
        raise PosebhError(f"{source}: model.pretrained and model.init_from are both set; give one "
                          "(init_from already holds a trained backbone)")
    if model.moe and model.expert_dim >= _backbone_dim(model.backbone):
        raise PosebhError(f"{source}: model.expert_dim: must be smaller than the backbone width "
                          f"{_backbone_dim(model.backbone)}")


def _backbone_dim(backbone: str) -> int:
    return {"tiny": 192, "small": 384, "base": 768, "large": 1024, "huge": 1280}[backbone]


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b=c' -> (['a', 'b'], value); the value is parsed as TOML, else kept as a string."""
    if "=" not in text:
        raise PosebhError(f"--set {text}: expected KEY=VALUE, e.g. --set train.batch_size=32")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise PosebhError(f"--set {text}: empty key")
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts, value


def apply_override(table: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    """Set a nested key; `datasets.NAME.x` and `stages.NAME_OR_INDEX.x` address list entries."""
    node: Any = table
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_entry(node, part, ".".join(parts[: depth + 1]), text)
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise PosebhError(f"--set {text}: '{'.'.join(parts[:depth + 1])}' is not a table")
    last = parts[-1]
    if isinstance(node, list):
        raise PosebhError(f"--set {text}: address an entry's key, e.g. {'.'.join(parts)}.ratio")
    node[last] = value


def _list_entry(entries: list, part: str, path: str, text: str) -> dict:
    if part.isdigit() and int(part) < len(entries):
        return entries[int(part)]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == part:
            return entry
    names = [str(e.get("name")) for e in entries if isinstance(e, dict)]
    raise PosebhError(f"--set {text}: no entry '{part}' in {path.rsplit('.', 1)[0]} "
                      f"(entries: {', '.join(names)})")


def recipe_from_table(table: dict[str, Any], source: str, overrides: list[str] = ()) -> Recipe:
    table = dict(table)
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(table, parts, value, text)
    table.setdefault("name", Path(source).stem)
    valid = [f.name for f in dataclasses.fields(Recipe)]
    for key in table:
        if key not in valid:
            raise PosebhError(f"{source}: {unknown_key_error(key, valid, '')}")
    try:
        recipe = build_dataclass(Recipe, table)
    except PosebhError as error:
        raise PosebhError(f"{source}: {error}") from None
    _validate_semantics(recipe, source)
    return recipe


def load_recipe(path: str | os.PathLike[str], overrides: list[str] = ()) -> Recipe:
    """Read, override and validate a recipe file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PosebhError(f"{path}: recipe file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise PosebhError(f"{path}: cannot read recipe ({error.__class__.__name__})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PosebhError(f"{path}: not valid TOML ({error})") from None
    return recipe_from_table(table, str(path), overrides)
