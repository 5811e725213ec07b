"""`posebh import-checkpoint` -> `posebh eval` / `posebh export` on synthetic mmpose files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from cli_support import assert_user_error
from engine_fixtures import tiny_run  # noqa: F401  (session fixture)
from typer.testing import CliRunner

from posebh_cli.cli import app
from posebh_cli.models.vit import ARCHS, ArchSpec

_spec = importlib.util.spec_from_file_location(
    "_mmpose_synthetic_cli", Path(__file__).resolve().parents[1] / "io" / "_mmpose_synthetic.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

MICRO = ArchSpec(64, 2, 2, 0.1, 16)
KEYPOINTS = (17, 17, 21)  # the tiny run's datasets: synth_human (coco), animal, hand


@pytest.fixture(autouse=True)
def _micro_backbone(monkeypatch):
    monkeypatch.setitem(ARCHS, "tiny", MICRO)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def mmpose_file(tmp_path_factory):
    state = synthetic.make_state(keypoints=KEYPOINTS, experts=3, proto=(2, 8, 16), seed=4)
    path = tmp_path_factory.mktemp("mmpose") / "posebh_micro.pth"
    synthetic.save_checkpoint(path, state)
    return path, state


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory, mmpose_file, tiny_run):  # noqa: F811
    path, _ = mmpose_file
    out = tmp_path_factory.mktemp("imported") / "runs" / "posebh_micro"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(ARCHS, "tiny", MICRO)
        result = invoke("import-checkpoint", str(path), "--recipe", str(tiny_run.recipe),
                        "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "every file tensor was mapped" in result.output
    return out


def test_import_then_eval_uses_the_source_tensors(imported_run, mmpose_file):
    from posebh_cli.engine.load_run import load_run

    _, state = mmpose_file
    loaded = load_run(imported_run)  # what eval / predict / export load
    assert loaded.dataset_names == ["synth_human", "synth_animal", "synth_hand"]
    model = loaded.model.double()
    double = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    images = torch.randn(3, 3, 64, 48, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    dataset_idx = torch.tensor([0, 1, 2])
    with torch.no_grad():
        out = model(images, dataset_idx)
    features = synthetic.reference_backbone(double, images, dataset_idx, MICRO.num_heads)
    for index, name in enumerate(loaded.dataset_names):
        expected = synthetic.reference_head(double, index, features[index:index + 1])
        torch.testing.assert_close(out["heatmaps"][name], expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(out["embeddings"], synthetic.reference_embedding(double, features),
                               rtol=0, atol=1e-10)
    result = invoke("eval", "--run", str(imported_run), "--dataset", "synth_hand",
                    "--device", "cpu", "--json", "--out", str(imported_run / "eval"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["synth_hand"]
    assert report["instances"] > 0 and "EPE" in report["pck"]
    results = json.loads((imported_run / "eval" / "synth_hand_val_results.json").read_text())
    assert len(results[0]["keypoints"]) == 21 * 3


def test_import_defaults_json_and_user_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plain = tmp_path / "vitpose_micro.pth"
    synthetic.save_checkpoint(plain, synthetic.make_state(keypoints=(17,), seed=1))
    result = invoke("import-checkpoint", str(plain), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["run_dir"] == str(Path("runs") / "vitpose_micro")
    assert report["kind"] == "vitpose" and report["experts"] == 0
    assert [d["name"] for d in report["datasets"]] == ["coco"]
    assert "prototype_table.prototypes" in report["initialised"]
    info = json.loads((tmp_path / "runs" / "vitpose_micro" / "run.json").read_text())
    assert info["import"]["kind"] == "vitpose" and info["step"] == 0

    assert_user_error(invoke("import-checkpoint", str(plain)), "already holds a run",
                      "--force")
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    assert_user_error(invoke("import-checkpoint", str(text)), "notes.pth",
                      "not a PyTorch checkpoint")
    assert_user_error(invoke("import-checkpoint", str(plain), "--arch", "vith", "--out", "x"),
                      "--arch vith", "width 64, depth 2")
    assert_user_error(invoke("import-checkpoint", str(plain), "--datasets", "coco,aic",
                             "--out", "y"), "2 names for the file's 1 keypoint heads")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("dynamic", [True, False])
def test_export_torchscript_equals_the_reference(imported_run, mmpose_file, tmp_path, dynamic):
    _, state = mmpose_file
    target = tmp_path / "animal.pt"
    args = ["export", "--run", str(imported_run), "--dataset", "synth_animal", "--format",
            "torchscript", "--batch-size", "2", "--out", str(target), "--json"]
    result = invoke(*args, *(["--dynamic-batch"] if dynamic else []))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["parity"]["checked"] and report["parity"]["ok"]
    assert report["output"] == ["B" if dynamic else "2", 17, 16, 12]
    exported = torch.jit.load(str(target))
    batch = 3 if dynamic else 2
    images = torch.randn(batch, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        heatmaps = exported(images)
    # the merged plain ViT + head equals the source model with expert 1 and head 1
    features = synthetic.reference_backbone(state, images, torch.ones(batch, dtype=torch.long),
                                            MICRO.num_heads)
    torch.testing.assert_close(heatmaps, synthetic.reference_head(state, 1, features),
                               rtol=1e-4, atol=1e-5)


def test_export_onnx(imported_run, tmp_path):
    pytest.importorskip("onnx")
    target = tmp_path / "hand.onnx"
    result = invoke("export", "--run", str(imported_run), "--dataset", "synth_hand", "--format",
                    "onnx", "--dynamic-batch", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        assert "parity check skipped: onnxruntime is not installed" in result.output
    else:
        assert "parity vs PyTorch ok" in result.output


def test_export_user_errors(imported_run, mmpose_file):
    path, _ = mmpose_file
    assert_user_error(invoke("export", "--run", str(imported_run), "--dataset", "coco",
                             "--format", "torchscript"), "--dataset coco", "synth_human (coco")
    assert_user_error(invoke("export", "--run", str(imported_run), "--dataset", "synth_hand",
                             "--format", "tflite"), "--format tflite")
    assert_user_error(invoke("export", "--checkpoint", str(path), "--dataset", "synth_hand",
                             "--format", "torchscript"), "posebh import-checkpoint")


def test_train_starts_from_an_imported_checkpoint(imported_run, tiny_run, tmp_path):  # noqa: F811
    """import-checkpoint, then model.init_from: the PoseBH schedule fine-tunes a trained model."""
    from safetensors.torch import load_file

    run_dir = tmp_path / "fine_tune"
    result = invoke("train", str(tiny_run.recipe), "--run-dir", str(run_dir), "--device", "cpu",
                    "--max-steps", "1", "--no-validate",
                    "--set", f"model.init_from={imported_run}",
                    "--set", 'stages.learn.train=["keypoint_heads"]',
                    "--set", 'stages.learn.prototypes="frozen"')
    assert result.exit_code == 0, result.output
    assert "datasets synth_human, synth_animal, synth_hand matched" in result.output
    assert "kept at init" not in result.output  # every tensor came from the checkpoint
    imported, tuned = load_file(imported_run / "model.safetensors"), load_file(
        run_dir / "model.safetensors")
    frozen = [k for k in tuned if not k.startswith("heads.")]
    assert frozen and all(torch.equal(tuned[k], imported[k]) for k in frozen)
