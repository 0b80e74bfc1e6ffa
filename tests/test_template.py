"""template.yaml: it lints clean, and it keeps the properties the service's safety rests on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runstop_dev.template import REPO_ROOT, TEMPLATE_PATH, load_template, table_resources

TABLE = "RunsTable"


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in load_template()["Resources"].items() if r["Type"] == kind}


def _function_properties(logical_id: str) -> dict[str, Any]:
    """A function's properties with the template's Globals applied, as SAM would."""
    return {
        **load_template().get("Globals", {}).get("Function", {}),
        **_resources("AWS::Serverless::Function")[logical_id]["Properties"],
    }


def _sam() -> str:
    """The sam CLI of the interpreter's own environment (the project's .venv)."""
    beside = Path(sys.executable).parent / "sam"
    found = str(beside) if beside.exists() else shutil.which("sam")
    if found is None:
        pytest.fail("sam CLI not found next to the interpreter nor on PATH: run `make install`")
    return found


@pytest.mark.slow
def test_sam_validate_with_lint_passes():
    # When
    result = subprocess.run(
        [_sam(), "validate", "--lint", "--template-file", str(TEMPLATE_PATH), "--region", "us-east-1"],
        cwd=REPO_ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_the_cancel_function_may_only_update_and_read_items_of_the_runs_table():
    # Given
    props = _resources("AWS::Serverless::Function")["CancelRunFunction"]["Properties"]
    # Then: no role of its own, no managed policy or SAM policy template, one inline statement list
    assert "Role" not in props
    statements = [statement for policy in props["Policies"] for statement in policy["Statement"]]
    assert all(set(policy) == {"Statement"} for policy in props["Policies"])
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:UpdateItem", "dynamodb:GetItem"],
            "Resource": {"Fn::GetAtt": [TABLE, "Arn"]},
        }
    ]


@pytest.mark.parametrize("logical_id", sorted(_resources("AWS::Serverless::Function")))
def test_every_function_runs_python_3_13_on_arm64_with_the_runstop_layer(logical_id):
    # Given
    props = _function_properties(logical_id)
    # Then
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert {"Ref": "RunstopLayer"} in props["Layers"]


def test_the_layer_is_built_for_python_3_13_on_arm64():
    # Given
    layer = _resources("AWS::Serverless::LayerVersion")["RunstopLayer"]
    # Then
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_the_runs_table_is_on_demand_encrypted_recoverable_and_expires_finished_runs():
    # Given
    props = _resources("AWS::DynamoDB::Table")[TABLE]["Properties"]
    # Then
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # expires_at is the attribute runstop.clock.expiry_epoch fills on finish and cancel
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


@pytest.mark.parametrize("logical_id", table_resources())
def test_every_table_survives_a_stack_deletion_or_replacement_and_is_encrypted(logical_id):
    # Given
    table = _resources("AWS::DynamoDB::Table")[logical_id]
    # Then
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}


def test_the_http_api_requires_a_jwt_on_every_route_by_default():
    # Given
    auth = _resources("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]["Auth"]
    # Then
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    assert set(authorizer["JwtConfiguration"]) == {"issuer", "audience"}
    # and no route opts out of it
    for logical_id, function in _resources("AWS::Serverless::Function").items():
        for name, event in (function["Properties"].get("Events") or {}).items():
            if event["Type"] == "HttpApi":
                assert "Auth" not in event["Properties"], f"{logical_id}.{name} overrides the authorizer"
                assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}


def test_given_no_endpoint_parameter_when_functions_are_configured_then_they_use_the_real_dynamodb():
    # Given the template's defaults (a deployment), When the local runner resolves the environment
    from runstop_dev.stack import local_refs
    from runstop_dev.template import function_environment, load_template

    env = function_environment("CancelRunFunction", local_refs())
    # Then no endpoint override is set, while `sam local` can set one through the parameter
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in env
    declared = load_template()["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL_DYNAMODB"]
    assert declared["Fn::If"][0] == "HasDynamoDBEndpoint"
