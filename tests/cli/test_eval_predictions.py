"""`posebh eval --predictions ... --ann ... --skeleton ...` through Typer's CliRunner."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from posebh_cli.cli.app_group import PosebhGroup
from posebh_cli.cli.evaluate import eval_command


def make_app() -> typer.Typer:
    app = typer.Typer(cls=PosebhGroup)
    app.command("eval")(eval_command)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `eval` a sub-command, as in posebh
        """Nothing."""

    return app


def write_case(tmp_path):
    kpts = [float(v) for k in range(17) for v in (10 + 3 * k, 20, 2)]
    gt = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "person"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": kpts,
                           "bbox": [0, 0, 80, 60]}]}
    results = [{"image_id": 1, "category_id": 1, "keypoints": kpts, "score": 0.9}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "r.json").write_text(json.dumps(results))
    return tmp_path / "r.json", tmp_path / "gt.json"


def test_eval_json_output_and_metrics_file(tmp_path):
    results, gt = write_case(tmp_path)
    out = tmp_path / "metrics" / "eval.json"
    run = CliRunner().invoke(make_app(), ["eval", "--predictions", str(results), "--ann", str(gt),
                                          "--skeleton", "coco", "--json", "--out", str(out)])
    assert run.exit_code == 0, run.output
    printed = json.loads(run.stdout)
    # pycocotools divides by tp + fp + eps: a perfect AP reads 1 - 2e-16.
    assert abs(printed["oks"]["AP"] - 1.0) < 1e-12 and printed["skeleton"] == "coco"
    assert json.loads(out.read_text()) == printed


def test_eval_table_output_with_fast_backend(tmp_path):
    results, gt = write_case(tmp_path)
    run = CliRunner().invoke(make_app(), ["eval", "--predictions", str(results), "--ann", str(gt),
                                          "--skeleton", "coco", "--backend", "fast"])
    assert run.exit_code == 0, run.output
    assert "OKS AP" in run.stdout and "1.0000" in run.stdout


def test_eval_user_errors_exit_2_with_one_line(tmp_path):
    results, gt = write_case(tmp_path)
    run = CliRunner().invoke(make_app(), ["eval", "--ann", str(gt), "--skeleton", "coco"])
    assert run.exit_code == 2
    assert "give --predictions RESULTS.json --ann GT.json --skeleton NAME" in run.output
    run = CliRunner().invoke(make_app(), ["eval", "--predictions", str(tmp_path / "nope.json"),
                                          "--ann", str(gt), "--skeleton", "coco"])
    assert run.exit_code == 2 and "predictions file not found" in run.output
    assert "Traceback" not in run.output
    run = CliRunner().invoke(make_app(), ["eval", "--predictions", str(results), "--ann",
                                          str(gt), "--skeleton", "onehand10k"])
    assert run.exit_code == 2 and "expected 63" in run.output
