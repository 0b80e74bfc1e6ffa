"""The deploy guide's parts: the example samconfig, the Cognito issuer template, docs/deploying.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest

from runstop_dev.template import REPO_ROOT, load_template

COGNITO = REPO_ROOT / "deploy" / "cognito.yaml"
GUIDE = REPO_ROOT / "docs" / "deploying.md"
SAMCONFIG = REPO_ROOT / "samconfig.example.toml"


def _overrides() -> dict[str, str]:
    config = tomllib.loads(SAMCONFIG.read_text())
    pairs = [item.split("=", 1) for item in config["default"]["deploy"]["parameters"]["parameter_overrides"]]
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), "a parameter is listed twice"
    return {name: value.strip('"') for name, value in pairs}


def test_the_example_samconfig_sets_every_parameter_of_the_template_and_no_other():
    # Then
    assert set(_overrides()) == set(load_template()["Parameters"])


def test_the_example_samconfig_keeps_each_default_and_marks_what_must_be_replaced():
    # Given
    parameters = load_template()["Parameters"]
    # Then: a value differs from its default only where the parameter has none, or the line says REPLACE
    for line in SAMCONFIG.read_text().splitlines():
        found = re.match(r"""\s*["'](\w+)=(.*?)["'],""", line)
        if not found:
            continue
        name, value = found[1], found[2].strip('"')
        default = parameters[name].get("Default")
        default = ",".join(default) if isinstance(default, list) else default
        if "REPLACE" not in line:
            assert value == str(default), f"{name}: {value!r} in the example, {default!r} in the template"
    assert "JwtIssuer" in [name for name, p in parameters.items() if "Default" not in p]


def test_the_deploy_guide_names_every_parameter_output_and_alarm():
    # Given
    guide = GUIDE.read_text()
    template = load_template()
    alarms = [rid for rid, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    # Then
    for name in [*template["Parameters"], *template["Outputs"], *alarms]:
        assert f"`{name}`" in guide, f"docs/deploying.md does not mention {name}"


def _cognito() -> dict[str, Any]:
    return load_template(COGNITO)


def _trigger_module() -> types.ModuleType:
    """The pre token generation function, from the template's own InlineCode."""
    props = _cognito()["Resources"]["TenantClaimFunction"]["Properties"]
    module = types.ModuleType("pre_token_generation")
    exec(compile(props["InlineCode"], str(COGNITO), "exec"), module.__dict__)
    return module


def _v2_event(attributes: dict[str, str]) -> dict[str, Any]:
    """A pre token generation V2_0 event, as Cognito sends it on sign-in."""
    return {
        "version": "2",
        "triggerSource": "TokenGeneration_Authentication",
        "region": "eu-west-1",
        "userPoolId": "eu-west-1_Example",
        "userName": "alice",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "client"},
        "request": {
            "userAttributes": {"sub": "1234", "cognito:user_status": "CONFIRMED", **attributes},
            "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": None},
            "scopes": ["aws.cognito.signin.user.admin"],
        },
        "response": {"claimsAndScopeOverrideDetails": None},
    }


def test_given_a_user_of_a_tenant_when_cognito_issues_tokens_then_the_access_token_carries_the_tenant_claim(
    monkeypatch,
):
    # Given
    claim = _cognito()["Parameters"]["TenantClaim"]["Default"]
    monkeypatch.setenv("TENANT_CLAIM", claim)
    # When
    result = _trigger_module().handler(_v2_event({"custom:tenant_id": "acme"}), None)
    # Then
    overrides = result["response"]["claimsAndScopeOverrideDetails"]
    assert overrides["accessTokenGeneration"]["claimsToAddOrOverride"] == {claim: "acme"}


def test_given_a_user_without_a_tenant_when_signing_in_then_no_token_is_issued(monkeypatch):
    # Given
    monkeypatch.setenv("TENANT_CLAIM", "tenant_id")
    # Then
    with pytest.raises(ValueError, match="custom:tenant_id"):
        _trigger_module().handler(_v2_event({}), None)


def test_the_cognito_pool_customizes_access_tokens_for_the_claim_runstop_reads():
    # Given
    resources = _cognito()["Resources"]
    pool = resources["UserPool"]["Properties"]
    # Then: V2_0 (access-token claims) needs the Essentials or Plus plan
    assert pool["LambdaConfig"]["PreTokenGenerationConfig"]["LambdaVersion"] == "V2_0"
    assert pool["UserPoolTier"] in ("ESSENTIALS", "PLUS")
    assert _cognito()["Parameters"]["TenantClaim"]["Default"] == load_template()["Parameters"]["TenantClaim"]["Default"]
    # and users cannot write their own tenant
    assert "custom:tenant_id" not in resources["AppClient"]["Properties"]["WriteAttributes"]
    assert set(_cognito()["Outputs"]) >= {"JwtIssuer", "JwtAudience"}


@pytest.mark.slow
def test_the_cognito_template_passes_sam_validate_with_lint():
    # When
    sam = Path(sys.executable).parent / "sam"
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template-file", str(COGNITO), "--region", "us-east-1"],
        cwd=REPO_ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Then
    assert result.returncode == 0, result.stdout + result.stderr
