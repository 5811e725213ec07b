"""Split one dataset out of a multi-dataset model and export it (TorchScript or ONNX).

Splitting (METHOD.md §1): each block's fc2 is concatenated with that dataset's expert rows, which
gives a plain ViT equal to the MoE model on that dataset; the dataset's heatmap head is kept.
The exported graph maps ImageNet-normalised crops (B, 3, H, W) float32 to heatmaps (B, K, h, w).
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from posebh_cli.errors import PosebhError
from posebh_cli.models.vit import PoseViT, merge_expert

EXPORT_FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DatasetPoseModel(nn.Module):
    """Plain ViT + one heatmap head: images (B, 3, H, W) -> heatmaps (B, K, h, w)."""

    def __init__(self, backbone: PoseViT, head: nn.Module) -> None:
        super().__init__()
        if backbone.config.num_experts:
            raise ValueError("DatasetPoseModel needs a plain backbone; merge the expert first")
        self.backbone = backbone
        self.head = head

    def forward(self, images: Tensor) -> Tensor:
        return self.head.heatmaps(self.backbone(images))


def split_dataset(model: nn.Module, dataset: str) -> DatasetPoseModel:
    """The single-dataset model of `dataset` from a PoseBHModel (copies; `model` is unchanged)."""
    names = list(model.heads.keys())
    if dataset not in names:
        from posebh_cli.skeletons.registry import unknown_name_error

        raise unknown_name_error("dataset", dataset, names)
    index = names.index(dataset)
    backbone = model.backbone
    if backbone.config.num_experts:
        plain = merge_expert(backbone, index)
    else:
        plain = copy.deepcopy(backbone)
    split = DatasetPoseModel(plain, copy.deepcopy(model.heads[dataset]))
    return split.eval()


@dataclass(frozen=True)
class ExportSpec:
    """What to export: input size (H, W), batch for tracing, dynamic batch axis, metadata."""

    input_size: tuple[int, int]
    batch_size: int = 1
    dynamic_batch: bool = False
    metadata: dict[str, Any] | None = None

    def example(self, seed: int = 0) -> Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(self.batch_size, 3, *self.input_size, generator=generator)


def export_metadata(dataset: str, skeleton: Any, input_size: tuple[int, int],
                    heatmap_size: tuple[int, int], encoding: str, source: str) -> dict[str, Any]:
    """What a consumer needs to use the graph: preprocessing, output layout, keypoint names."""
    return {
        "producer": "posebh", "dataset": dataset, "skeleton": skeleton.name,
        "keypoints": list(skeleton.keypoints),
        "flip_pairs": [[int(a), int(b)] for a, b in skeleton.flip_pairs],
        "input": "images (B, 3, H, W) float32 RGB, (x / 255 - mean) / std",
        "input_size": list(input_size), "heatmap_size": list(heatmap_size),
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "encoding": encoding,
        "source": source,
    }


def _quiet_trace():
    # Tracing warns about shape checks turned into constants: the spatial size is fixed by design.
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message=r".*deprecated.*")
    warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
    warnings.filterwarnings("ignore", message=r".*will be removed.*")
    return context


def to_torchscript_bytes(module: DatasetPoseModel, spec: ExportSpec) -> bytes:
    """torch.jit.trace of `module` (fp32, eval), metadata in the archive's extra files."""
    module = module.float().eval()
    context = _quiet_trace()
    try:
        with torch.no_grad():
            traced = torch.jit.trace(module, (spec.example(),))
        buffer = io.BytesIO()
        extra = {"posebh.json": json.dumps(spec.metadata or {})}
        torch.jit.save(traced, buffer, _extra_files=extra)
    finally:
        context.__exit__(None, None, None)
    return buffer.getvalue()


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def to_onnx_bytes(module: DatasetPoseModel, spec: ExportSpec, opset: int = ONNX_OPSET) -> bytes:
    """ONNX graph (TorchScript-based exporter), inputs 'images', outputs 'heatmaps'."""
    if not onnx_available():
        raise PosebhError("ONNX export needs the onnx package: pip install posebh[onnx]")
    import onnx

    module = module.float().eval()
    axes = {"images": {0: "batch"}, "heatmaps": {0: "batch"}} if spec.dynamic_batch else None
    buffer = io.BytesIO()
    context = _quiet_trace()
    try:
        with torch.no_grad():
            torch.onnx.export(module, (spec.example(),), buffer, dynamo=False,
                              input_names=["images"], output_names=["heatmaps"],
                              opset_version=opset, dynamic_axes=axes, do_constant_folding=True)
    finally:
        context.__exit__(None, None, None)
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in (spec.metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    return proto.SerializeToString()


def export_dataset_model(module: DatasetPoseModel, path: str | Path, fmt: str,
                         spec: ExportSpec) -> Path:
    """Write the export atomically; returns the path."""
    from posebh_cli.io.atomic import atomic_write_bytes

    if fmt not in EXPORT_FORMATS:
        raise PosebhError(f"--format {fmt}: expected one of {list(EXPORT_FORMATS)}")
    data = to_onnx_bytes(module, spec) if fmt == "onnx" else to_torchscript_bytes(module, spec)
    path = Path(path)
    atomic_write_bytes(path, data)
    return path


@dataclass(frozen=True)
class ParityReport:
    """Max |exported - PyTorch| over the check batch; `checked` False when no runtime exists."""

    checked: bool
    max_abs_diff: float = float("nan")
    max_abs_value: float = float("nan")
    batch_size: int = 0
    reason: str = ""

    def ok(self, tolerance: float = 1e-4) -> bool:
        """Relative to the output scale: heatmaps are small numbers."""
        scale = max(self.max_abs_value, 1e-6)
        return (not self.checked) or self.max_abs_diff <= tolerance * max(1.0, scale)


def run_exported(path: str | Path, fmt: str, images: Tensor) -> Tensor | None:
    """Run an exported file on `images`; None when ONNX Runtime is not installed."""
    if fmt == "torchscript":
        loaded = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            return loaded(images)
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["heatmaps"], {"images": images.numpy()})[0])


def check_parity(module: DatasetPoseModel, path: str | Path, fmt: str,
                 spec: ExportSpec) -> ParityReport:
    """Compare the exported file with PyTorch on a fresh batch (another size when dynamic)."""
    batch = spec.batch_size + 1 if spec.dynamic_batch else spec.batch_size
    images = torch.randn(batch, 3, *spec.input_size, generator=torch.Generator().manual_seed(1))
    exported = run_exported(path, fmt, images)
    if exported is None:
        return ParityReport(False, reason="onnxruntime is not installed")
    with torch.no_grad():
        expected = module.float().eval()(images)
    diff = (exported.float() - expected).abs().max().item()
    return ParityReport(True, diff, expected.abs().max().item(), batch)
