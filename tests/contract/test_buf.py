"""buf lint and breaking-change checks, and proof that the breaking check bites."""

from __future__ import annotations

from pathlib import Path

from tests.contract.conftest import BASELINE, buf, edit


def test_lint_passes():
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_baseline():
    result = buf("breaking", "--against", str(BASELINE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_unedited_copy_is_not_breaking(proto_copy: Path):
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_renumbered_field_is_caught(proto_copy: Path):
    edit(
        proto_copy / "protos/rxcast/feature/v1/feature.proto",
        r"optional double units_dispensed = 4;",
        "optional double units_dispensed = 40;",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert "units_dispensed" in result.stdout, result.stdout


def test_removed_rpc_is_caught(proto_copy: Path):
    edit(
        proto_copy / "protos/rxcast/trainer/v1/trainer.proto",
        r"  rpc Rollback\(RollbackRequest\) returns \(RollbackResponse\);\n",
        "",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert "Rollback" in result.stdout, result.stdout


def test_changed_oip_field_type_is_caught(proto_copy: Path):
    edit(
        proto_copy / "protos/inference/grpc_predict_v2.proto",
        r"  string model_name = 1;",
        "  bytes model_name = 1;",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert "model_name" in result.stdout, result.stdout


def test_lint_catches_an_uncommented_field(proto_copy: Path):
    edit(
        proto_copy / "protos/rxcast/drift/v1/drift.proto",
        r"  // The model version it belongs to.\n  int64 model_version = 1;\n  // The profile",
        "  int64 model_version = 1;\n  // The profile",
    )
    result = buf("lint", cwd=proto_copy)
    assert result.returncode != 0
    assert "model_version" in result.stdout, result.stdout


def test_deleted_as_of_time_is_caught(proto_copy: Path):
    """Deleting a field added after the first baseline fails too: the baseline holds it."""
    edit(
        proto_copy / "protos/rxcast/predictor/v1/predictor.proto",
        r"(message PredictRequest \{.*?EntityKeys keys = 1;\n).*?  google\.protobuf\.Timestamp as_of_time = 2;\n",
        r"\1",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert "as_of_time" in result.stdout and "PredictRequest" in result.stdout, result.stdout


def test_renumbered_as_of_time_is_caught(proto_copy: Path):
    edit(
        proto_copy / "protos/rxcast/predictor/v1/predictor.proto",
        r"(message PredictRequest \{.*?)google\.protobuf\.Timestamp as_of_time = 2;",
        r"\1google.protobuf.Timestamp as_of_time = 15;",
    )
    result = buf("breaking", "--against", str(BASELINE), cwd=proto_copy)
    assert result.returncode != 0
    assert 'field "2" with name "as_of_time" on message "PredictRequest"' in result.stdout, result.stdout
