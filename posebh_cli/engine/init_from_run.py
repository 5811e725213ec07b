"""Start a training run from the weights of another run (`model.init_from`).

PoseBH fine-tunes a trained multi-dataset model (METHOD.md §4: the reference schedule starts from
ViTPose++): `posebh import-checkpoint` turns the released file into a run, and the recipe names
that run in `model.init_from`. Tensors are matched by what they mean, not by position:
- shared tensors (backbone, embedding head) by name and shape; a position embedding of another
  token grid is resampled, as for `model.pretrained`;
- per-dataset tensors by DATASET NAME: the head `heads.<name>`, the dataset's MoE expert row and
  its block of the prototype table. A recipe may list the datasets in another order, drop some or
  add new ones. A dataset of the same name but another skeleton is not matched (its keypoints
  differ).
- A new dataset's expert row starts as a copy of a trained dataset's (the first of the same
  family, else the first): METHOD.md §4b, transfer starts from the model of one trained dataset.
  Its head and prototype block keep the recipe's init.
Everything not filled keeps the recipe's init; the report says what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from posebh_cli.engine import run_dir as rd
from posebh_cli.engine.extend_run import PROTOTYPE_KEY, default_like
from posebh_cli.errors import PosebhError
from posebh_cli.models.posebh import PoseBHModel
from posebh_cli.skeletons import KeypointTypeTable

EXPERT_SUFFIXES = ("expert_weight", "expert_bias")
POS_EMBED_KEY = "backbone.pos_embed"


@dataclass
class InitReport:
    """What `init_from_run` copied. Key lists hold target model keys."""

    source: Path
    loaded: int = 0  # target tensors filled from the source
    matched: list[str] = field(default_factory=list)  # datasets found in the source
    new: dict[str, str] = field(default_factory=dict)  # new dataset -> whose expert it copies
    unused: list[str] = field(default_factory=list)  # source datasets not in the recipe
    kept_at_init: list[str] = field(default_factory=list)  # no source tensor of that shape

    def summary(self) -> str:
        """One line for the user."""
        parts = [f"initialised from {self.source}: {self.loaded} tensors; datasets "
                 f"{', '.join(self.matched) or 'none'} matched"]
        if self.new:
            parts.append("new: " + ", ".join(f"{d} (expert copied from {like})"
                                             for d, like in self.new.items()))
        if self.unused:
            parts.append(f"not in this recipe: {', '.join(self.unused)}")
        if self.kept_at_init:
            shown = ", ".join(self.kept_at_init[:4])
            more = ", ..." if len(self.kept_at_init) > 4 else ""
            parts.append(f"{len(self.kept_at_init)} kept at init: {shown}{more}")
        return "; ".join(parts)


def _dataset_map(target: KeypointTypeTable, source: KeypointTypeTable
                 ) -> tuple[list[str], dict[str, str]]:
    """(target datasets the source has under the same name and skeleton,
    new target dataset -> source dataset whose expert it copies)."""
    matched, new = [], {}
    for name, skeleton in zip(target.datasets, target.skeletons):
        if name in source.datasets and source.skeleton(name).name == skeleton.name:
            matched.append(name)
        else:
            new[name] = default_like(source, skeleton.name)
    return matched, new


def transfer_weights(model: PoseBHModel, types: KeypointTypeTable, source: PoseBHModel,
                     source_types: KeypointTypeTable, source_path: Path) -> InitReport:
    """Copy `source`'s weights into `model` as the module docstring describes (in place)."""
    moe, source_moe = (m.backbone.config.num_experts > 0 for m in (model, source))
    if moe != source_moe:
        have = "has" if source_moe else "has no"
        raise PosebhError(f"model.init_from {source_path}: that model {have} MoE experts and "
                          f"this recipe sets model.moe = {str(moe).lower()}; set it as that run "
                          "was trained")
    matched, new = _dataset_map(types, source_types)
    report = InitReport(source_path, matched=matched, new=new,
                        unused=[d for d in source_types.datasets if d not in matched])
    old = {k: v.detach().cpu() for k, v in source.state_dict().items()}
    state = model.state_dict()
    backbone_loaded = 0
    for key, target in state.items():
        value = _source_value(key, target, old, types, source_types, matched, new)
        if key == POS_EMBED_KEY and value is not None and value.shape != target.shape:
            value = _resample_grid(value, source.backbone.grid_size, model.backbone.grid_size)
        if value is None or value.shape != target.shape:
            report.kept_at_init.append(key)
            continue
        state[key] = value.to(target.dtype)
        report.loaded += 1
        backbone_loaded += key.startswith("backbone.")
    if backbone_loaded == 0:
        raise PosebhError(f"model.init_from {source_path}: its backbone shares no tensor of the "
                          f"same name and shape with this recipe's model.backbone = "
                          f"'{model.backbone.config.arch}'; start from a run of the same backbone")
    model.load_state_dict(state, strict=True)
    return report


def _source_value(key: str, target: Tensor, old: dict[str, Tensor],
                  types: KeypointTypeTable, source_types: KeypointTypeTable,
                  matched: list[str], new: dict[str, str]) -> Tensor | None:
    """The source tensor for target `key`, remapped by dataset; None when it has none. The
    caller checks its shape."""
    if key.startswith("heads."):  # heads.<dataset>.<tensor>: a dataset name has no dot
        return old.get(key) if key.split(".")[1] in matched else None
    if key.endswith(EXPERT_SUFFIXES) and key in old:
        rows = [source_types.dataset_index(new.get(d, d)) for d in types.datasets]
        return old[key][rows]
    if key == PROTOTYPE_KEY:
        if key not in old or old[key].shape[1:] != target.shape[1:]:
            return None
        value = target.detach().cpu().clone()  # new datasets' blocks keep their init
        for name in matched:
            start, source_start = types.offset(name), source_types.offset(name)
            count = types.num_keypoints(name)
            value[start:start + count] = old[key][source_start:source_start + count]
        return value
    return old.get(key)


def _resample_grid(pos_embed: Tensor, old_grid: tuple[int, int], grid: tuple[int, int]) -> Tensor:
    """(1, h*w, D) position table of one token grid -> another (bicubic, as timm does)."""
    from posebh_cli.timm_import import import_timm

    resample = import_timm().layers.resample_abs_pos_embed
    return resample(pos_embed.float(), list(grid), list(old_grid), num_prefix_tokens=0)


def init_from_run(model: PoseBHModel, types: KeypointTypeTable, path: str | Path) -> InitReport:
    """Load the run at `path` (a run directory or its model.safetensors) and copy its weights
    into `model`. Every user mistake raises PosebhError naming model.init_from and the file."""
    from posebh_cli.engine.load_run import load_run

    path = Path(path)
    if not path.exists():
        raise PosebhError(f"model.init_from: {path} does not exist (expected a posebh run "
                          f"directory or its {rd.WEIGHTS_FILE})")
    try:
        source = load_run(run=path) if path.is_dir() else load_run(checkpoint=path)
    except PosebhError as error:
        raise PosebhError(f"model.init_from: {error}") from None
    return transfer_weights(model, types, source.model, source.types, path)
