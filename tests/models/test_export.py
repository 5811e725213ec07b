"""Splitting one dataset out of a multi-dataset model and exporting it (TorchScript, ONNX)."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from posebh_cli.errors import PosebhError
from posebh_cli.models.export import (
    DatasetPoseModel,
    ExportSpec,
    check_parity,
    export_dataset_model,
    export_metadata,
    split_dataset,
    to_onnx_bytes,
)
from posebh_cli.models.posebh import build_model
from posebh_cli.models.vit import ARCHS, ArchSpec
from posebh_cli.recipe import ModelConfig
from posebh_cli.skeletons import get_skeleton

DATASETS = [("coco", 17), ("mpii", 16), ("ap10k", 17)]
INPUT = (64, 48)


MICRO = ArchSpec(64, 2, 2, 0.1, 16)  # "tiny" shrunk to width 64, depth 2: fast tracing


@pytest.fixture(autouse=True)
def _micro_backbone(monkeypatch):
    monkeypatch.setitem(ARCHS, "tiny", MICRO)


@pytest.fixture(scope="module")
def models():
    """{moe: model}; built once (splits copy, nothing mutates them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(ARCHS, "tiny", MICRO)
        return {True: _build(True), False: _build(False)}


def _build(moe: bool, seed: int = 0):
    cfg = ModelConfig(backbone="tiny", input_size=INPUT, heatmap_size=(16, 12), moe=moe,
                      expert_dim=16, head_channels=16, embed_head_channels=16, embedding_dim=8)
    model = build_model(cfg, DATASETS, seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # non-trivial weights and BN statistics everywhere
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator) * 0.05
            if name.endswith("running_var"):
                tensor.copy_(noise.abs() + 0.5)
            else:
                tensor.add_(noise)
    return model.eval()


def _images(batch: int, seed: int = 7) -> torch.Tensor:
    return torch.randn(batch, 3, *INPUT, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("moe", [True, False])
def test_split_equals_the_multi_dataset_model_on_its_dataset(models, moe):
    model = models[moe]
    images = _images(3)
    for index, (name, keypoints) in enumerate(DATASETS):
        split = split_dataset(model, name)
        assert split.backbone.config.num_experts == 0
        with torch.no_grad():
            expected = model(images, torch.full((3,), index))["heatmaps"][name]
            got = split(images)
        assert got.shape == (3, keypoints, 16, 12)
        assert expected.abs().max() > 1e-2
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert model.backbone.config.num_experts == (3 if moe else 0)  # the source is unchanged


def test_split_rows_are_the_shared_fc2_then_the_expert(models):
    model = models[True]
    split = split_dataset(model, "ap10k")
    moe = model.backbone.blocks[1].mlp
    fc2 = split.backbone.blocks[1].mlp.fc2
    assert torch.equal(fc2.weight[:48], moe.fc2.weight)
    assert torch.equal(fc2.weight[48:], moe.expert_weight[2])
    assert torch.equal(fc2.bias[48:], moe.expert_bias[2])


def test_other_experts_give_other_outputs(models):
    model = models[True]
    images = _images(2)
    with torch.no_grad():
        coco = split_dataset(model, "coco").backbone(images)
        mpii = split_dataset(model, "mpii").backbone(images)
    assert (coco - mpii).abs().max() > 1e-3


def test_unknown_dataset_lists_the_choices(models):
    with pytest.raises(PosebhError, match="aic.*coco"):
        split_dataset(models[True], "aic")
    with pytest.raises(ValueError, match="plain backbone"):
        DatasetPoseModel(models[True].backbone, torch.nn.Identity())


def _metadata():
    return export_metadata("mpii", get_skeleton("mpii"), INPUT, (16, 12), "udp", "test")


@pytest.mark.parametrize("dynamic", [True, False])
def test_torchscript_export_matches_pytorch(models, tmp_path, dynamic):
    split = split_dataset(models[True], "mpii")
    spec = ExportSpec(INPUT, batch_size=2, dynamic_batch=dynamic, metadata=_metadata())
    path = export_dataset_model(split, tmp_path / "mpii.pt", "torchscript", spec)
    report = check_parity(split, path, "torchscript", spec)
    assert report.checked and report.batch_size == (3 if dynamic else 2)
    assert report.max_abs_diff < 1e-5 and report.ok()
    extra = {"posebh.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra["posebh.json"])
    assert meta["skeleton"] == "mpii" and len(meta["keypoints"]) == 16
    assert meta["mean"] == [0.485, 0.456, 0.406]


def test_parity_check_detects_a_different_model(models, tmp_path):
    model = models[True]
    spec = ExportSpec(INPUT, batch_size=1)
    path = export_dataset_model(split_dataset(model, "coco"), tmp_path / "coco.pt",
                                "torchscript", spec)
    report = check_parity(split_dataset(model, "ap10k"), path, "torchscript", spec)
    assert report.checked and not report.ok()


@pytest.mark.parametrize("dynamic", [True, False])
def test_onnx_export_matches_pytorch(models, tmp_path, dynamic):
    onnx = pytest.importorskip("onnx")
    split = split_dataset(models[True], "coco")
    spec = ExportSpec(INPUT, batch_size=2, dynamic_batch=dynamic, metadata=_metadata())
    path = export_dataset_model(split, tmp_path / "coco.onnx", "onnx", spec)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    batch_dim = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert (batch_dim.dim_param == "batch") if dynamic else (batch_dim.dim_value == 2)
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["skeleton"] == "mpii" and json.loads(props["input_size"]) == [64, 48]
    pytest.importorskip("onnxruntime")
    report = check_parity(split, path, "onnx", spec)
    assert report.checked and report.batch_size == (3 if dynamic else 2)
    assert report.max_abs_diff < 1e-4 and report.ok()


def test_onnx_without_the_package_is_a_clear_error(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(PosebhError, match=r"pip install posebh\[onnx\]"):
        to_onnx_bytes(split_dataset(models[True], "coco"), ExportSpec(INPUT))


def test_parity_is_skipped_without_onnxruntime(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    split = split_dataset(models[True], "coco")
    report = check_parity(split, tmp_path / "absent.onnx", "onnx", ExportSpec(INPUT))
    assert not report.checked and "onnxruntime" in report.reason


def test_unknown_format_is_refused(models, tmp_path):
    with pytest.raises(PosebhError, match="--format tflite"):
        export_dataset_model(split_dataset(models[True], "coco"), tmp_path / "x", "tflite",
                             ExportSpec(INPUT))
