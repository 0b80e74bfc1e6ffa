"""template.yaml: it lints clean, and it keeps the properties the service's safety rests on."""

from __future__ import annotations

import json
import os
import re
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


# ---- Operations: alarms, dashboard, limits, least privilege, checkov.


def _globals_env(name: str) -> Any:
    return load_template()["Globals"]["Function"]["Environment"]["Variables"][name]


def _emitted_triggers() -> dict[str, set[str]]:
    """Every custom metric name the code emits, with the `trigger` values it carries (from the code's names)."""
    from runstop.cancel import CancelOutcome
    from runstop.metric_names import (
        CANCEL_STORE_UNAVAILABLE,
        CANCEL_TRIGGERS,
        STOP_LATENCY,
        STOP_OVERDUE,
        STOP_TRIGGERS,
        SWEEP_PREFIX,
        TRIGGER_SWEEPER,
        cancel_metric,
    )
    from runstop.sweeper import DEFERRED, UNAVAILABLE
    from runstop.triggers import MALFORMED

    outcomes = [outcome.value for outcome in CancelOutcome]
    emitted: dict[str, set[str]] = {}
    for name in [*map(cancel_metric, [*outcomes, MALFORMED]), CANCEL_STORE_UNAVAILABLE]:
        emitted[name] = set(CANCEL_TRIGGERS)
    for outcome in [*outcomes, DEFERRED, UNAVAILABLE]:
        emitted[SWEEP_PREFIX + outcome] = {TRIGGER_SWEEPER}
    for name in (STOP_OVERDUE, STOP_LATENCY):
        emitted[name] = set(STOP_TRIGGERS)
    return emitted


def _alarms() -> dict[str, dict[str, Any]]:
    return {rid: r["Properties"] for rid, r in _resources("AWS::CloudWatch::Alarm").items()}


def _alarm_metrics(props: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches: its single metric, or each MetricStat of its math."""
    if "MetricName" in props:
        keys = ("Namespace", "MetricName", "Dimensions")
        return [{key: props[key] for key in keys} | {"Stat": props.get("Statistic") or props["ExtendedStatistic"]}]
    return [
        {**m["MetricStat"]["Metric"], "Stat": m["MetricStat"]["Stat"]} for m in props["Metrics"] if "MetricStat" in m
    ]


def _dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


def _custom_alarm_metrics() -> dict[str, list[dict[str, Any]]]:
    namespace = _globals_env("POWERTOOLS_METRICS_NAMESPACE")
    return {
        rid: [m for m in _alarm_metrics(props) if m["Namespace"] == namespace]
        for rid, props in _alarms().items()
        if any(m["Namespace"] == namespace for m in _alarm_metrics(props))
    }


def test_every_alarm_on_a_runstop_metric_watches_a_name_and_dimensions_the_code_emits():
    # Given: what the functions emit, read from the code's own names
    from runstop.metric_names import SERVICE_DIMENSION, TRIGGER_DIMENSION

    emitted = _emitted_triggers()
    service = _globals_env("POWERTOOLS_SERVICE_NAME")
    # Then: each watched metric is one of them, with exactly the dimensions Powertools writes
    watched = _custom_alarm_metrics()
    assert watched, "no alarm watches a runstop metric"
    for rid, metrics in watched.items():
        for metric in metrics:
            assert metric["MetricName"] in emitted, f"{rid} watches {metric['MetricName']}, which no code emits"
            dims = _dimensions(metric)
            assert set(dims) == {SERVICE_DIMENSION, TRIGGER_DIMENSION}, rid
            assert dims[SERVICE_DIMENSION] == service, rid
            assert dims[TRIGGER_DIMENSION] in emitted[metric["MetricName"]], (rid, dims)


@pytest.mark.parametrize(
    ("alarm", "name", "triggers"),
    [
        ("CancelConflictSpikeAlarm", "CANCEL_CONFLICT", "CANCEL_TRIGGERS"),
        ("CancelStoreUnavailableAlarm", "CANCEL_STORE_UNAVAILABLE", "CANCEL_TRIGGERS"),
        ("StopOverdueAlarm", "STOP_OVERDUE", "STOP_TRIGGERS"),
    ],
)
def test_each_seed_risk_alarm_sums_its_metric_over_every_trigger_that_emits_it(alarm, name, triggers):
    # Given
    from runstop import metric_names
    from runstop.metric_names import TRIGGER_DIMENSION

    props = _alarms()[alarm]
    # Then: one metric per trigger, all of them added up by the one expression that alarms
    metrics = _custom_alarm_metrics()[alarm]
    assert {m["MetricName"] for m in metrics} == {getattr(metric_names, name)}
    assert sorted(_dimensions(m)[TRIGGER_DIMENSION] for m in metrics) == sorted(getattr(metric_names, triggers))
    assert all(m["Stat"] == "Sum" for m in metrics)
    expressions = [m for m in props["Metrics"] if "Expression" in m]
    assert len(expressions) == 1
    assert expressions[0].get("ReturnData", True)
    stat_ids = {m["Id"] for m in props["Metrics"] if "MetricStat" in m}
    assert stat_ids == set(re.findall(r"FILL\((\w+), 0\)", expressions[0]["Expression"]))
    assert props["TreatMissingData"] == "notBreaching"


def _dead_letter_queues() -> set[str]:
    """Every queue the template names as a dead-letter target (redrive, on-failure, rule and pipe DLQs)."""
    found: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if key in ("deadLetterTargetArn", "Destination", "Arn") and set(node) == {"Fn::GetAtt"}:
                found.add(node["Fn::GetAtt"][0])
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    walk(load_template()["Resources"])
    return found & set(_resources("AWS::SQS::Queue"))


def test_every_dead_letter_queue_has_an_alarm_on_its_first_message():
    # Given
    dlqs = _dead_letter_queues()
    assert dlqs == {"CancelRequestsDLQ", "CancelEventsDLQ", "NotificationsDLQ", "RunEndedDLQ", "CancelJobsDLQ"}
    # Then
    watched = set()
    for props in _alarms().values():
        for metric in _alarm_metrics(props):
            if metric["Namespace"] == "AWS/SQS" and metric["MetricName"] == "ApproximateNumberOfMessagesVisible":
                assert (props["Threshold"], props["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
                watched.add(_dimensions(metric)["QueueName"]["Fn::GetAtt"][0])
    assert watched == dlqs


@pytest.mark.parametrize("metric_name", ["Errors", "Throttles"])
def test_every_function_is_covered_by_the_error_and_throttle_alarms(metric_name):
    # Given
    functions = set(_resources("AWS::Serverless::Function"))
    # Then
    watched = {
        _dimensions(m)["FunctionName"]["Ref"]
        for props in _alarms().values()
        for m in _alarm_metrics(props)
        if m["Namespace"] == "AWS/Lambda" and m["MetricName"] == metric_name
    }
    assert watched == functions


def test_the_runs_table_throttle_alarm_covers_every_operation_the_roles_allow_on_it():
    # Given: the DynamoDB actions any function may call on the runs table or its indexes
    allowed = set()
    for function in _resources("AWS::Serverless::Function").values():
        for policy in function["Properties"].get("Policies", []):
            for statement in policy["Statement"]:
                if "RunsTable" in json.dumps(statement["Resource"]):
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    allowed |= {a.split(":", 1)[1] for a in actions if a.startswith("dynamodb:")}
    # Then
    metrics = _alarm_metrics(_alarms()["RunsTableThrottleAlarm"])
    assert {m["MetricName"] for m in metrics} == {"ThrottledRequests"}
    assert {_dimensions(m)["TableName"]["Ref"] for m in metrics} == {TABLE}
    assert {_dimensions(m)["Operation"] for m in metrics} == allowed


def test_the_latency_alarm_watches_the_p99_of_the_cancel_route_which_the_stage_measures_per_route():
    # Given: the cancel route as the template routes it
    event = _resources("AWS::Serverless::Function")["CancelRunFunction"]["Properties"]["Events"]["Cancel"]
    api = _resources("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]
    # Then
    props = _alarms()["CancelLatencyAlarm"]
    assert (props["Namespace"], props["MetricName"], props["ExtendedStatistic"]) == ("AWS/ApiGateway", "Latency", "p99")
    dims = _dimensions(props)
    assert (dims["Method"], dims["Resource"], dims["ApiId"]) == (
        event["Properties"]["Method"],
        event["Properties"]["Path"],
        {"Ref": "HttpApi"},
    )
    assert dims["Stage"] == api.get("StageName", "$default")
    assert api["DefaultRouteSettings"]["DetailedMetricsEnabled"] is True
    assert props["Threshold"] == {"Ref": "CancelLatencyAlarmMilliseconds"}


def test_every_alarm_tells_the_optional_topic_of_each_state_change():
    # Given
    parameter = load_template()["Parameters"]["AlarmTopicArn"]
    # Then: empty by default (no notifications), and every alarm sends both ways when set
    assert parameter["Default"] == ""
    assert load_template()["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    expected = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], []]}
    for rid, props in _alarms().items():
        assert props["AlarmActions"] == expected, rid
        assert props["OKActions"] == expected, rid


def _dashboard() -> dict[str, Any]:
    body: dict[str, Any] = _resources("AWS::CloudWatch::Dashboard")["OperationsDashboard"]["Properties"]
    return body["DashboardBody"]["Fn::ToJsonString"]


def _widget_metrics(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, name, dimensions) of each metric line of a dashboard widget."""
    lines = []
    for line in widget["properties"].get("metrics", []):
        fields = [f for f in line if not (isinstance(f, dict) and set(f) - {"Ref", "Fn::GetAtt"})]
        namespace, name, *pairs = fields
        lines.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return lines


def test_every_runstop_metric_on_the_dashboard_is_one_the_code_emits():
    # Given
    from runstop.metric_names import SERVICE_DIMENSION, TRIGGER_DIMENSION

    emitted = _emitted_triggers()
    namespace, service = _globals_env("POWERTOOLS_METRICS_NAMESPACE"), _globals_env("POWERTOOLS_SERVICE_NAME")
    # Then
    lines = [line for widget in _dashboard()["widgets"] for line in _widget_metrics(widget) if line[0] == namespace]
    assert lines
    for _, name, dims in lines:
        assert name in emitted, f"the dashboard shows {name}, which no code emits"
        assert dims == {SERVICE_DIMENSION: service, TRIGGER_DIMENSION: dims[TRIGGER_DIMENSION]}
        assert dims[TRIGGER_DIMENSION] in emitted[name], (name, dims)


def test_the_dashboard_shows_outcomes_per_trigger_latency_stops_overdue_runs_dlqs_throttles_and_every_alarm():
    # Given
    from runstop.metric_names import (
        CANCEL_CONFLICT,
        CANCEL_TRIGGERS,
        STOP_LATENCY,
        STOP_OVERDUE,
        STOP_TRIGGERS,
        TRIGGER_DIMENSION,
    )

    widgets = _dashboard()["widgets"]
    lines = [line for widget in widgets for line in _widget_metrics(widget)]
    # Then
    shown = {(name, dims.get(TRIGGER_DIMENSION)) for _, name, dims in lines}
    assert {(CANCEL_CONFLICT, trigger) for trigger in CANCEL_TRIGGERS} <= shown
    assert {(STOP_LATENCY, trigger) for trigger in STOP_TRIGGERS} <= shown
    assert {(STOP_OVERDUE, trigger) for trigger in STOP_TRIGGERS} <= shown
    assert ("Latency", None) in shown
    dlqs = {dims["QueueName"]["Fn::GetAtt"][0] for ns, name, dims in lines if ns == "AWS/SQS"}
    assert dlqs == _dead_letter_queues()
    throttled = {dims["FunctionName"]["Ref"] for ns, name, dims in lines if name == "Throttles"}
    assert throttled == set(_resources("AWS::Serverless::Function"))
    assert ("ThrottledRequests", None) in shown
    alarm_widget = next(w for w in widgets if w["type"] == "alarm")
    assert {a["Fn::GetAtt"][0] for a in alarm_widget["properties"]["alarms"]} == set(_alarms())


def test_the_stage_is_throttled_by_parameters():
    # Given
    settings = _resources("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]["DefaultRouteSettings"]
    parameters = load_template()["Parameters"]
    # Then
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert parameters["ApiThrottlingRateLimit"]["Type"] == parameters["ApiThrottlingBurstLimit"]["Type"] == "Number"


@pytest.mark.parametrize("logical_id", sorted(_resources("AWS::Serverless::Function")))
def test_every_function_reserves_the_concurrency_its_parameter_says_and_zero_means_unreserved(logical_id):
    # Given
    props = _resources("AWS::Serverless::Function")[logical_id]["Properties"]
    condition, value, otherwise = props["ReservedConcurrentExecutions"]["Fn::If"]
    parameter = value["Ref"]
    # Then
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert load_template()["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, "0"]}]}
    declared = load_template()["Parameters"][parameter]
    assert (declared["Type"], declared["Default"], declared["MinValue"]) == ("Number", 0, 0)


def test_the_runs_table_cannot_be_deleted_by_accident():
    # Given
    props = _resources("AWS::DynamoDB::Table")[TABLE]["Properties"]
    # Then
    assert props["DeletionProtectionEnabled"] is True


def test_the_runs_api_may_query_only_the_indexes_listing_reads():
    # Given: the indexes GET /runs really queries, with every filter it takes
    from runstop import runs
    from runstop.status import RunStatus, StopPhase
    from runstop.store import run_store
    from tests.unit.support import moto_tables

    with moto_tables():
        queried: list[str] = []
        store = run_store()
        store.client.meta.events.register(
            "provide-client-params.dynamodb.Query", lambda params, **_: queried.append(params["IndexName"])
        )
        runs.list_runs(store, "acme")
        for status in RunStatus:
            runs.list_runs(store, "acme", status=status)
        for phase in StopPhase:
            runs.list_runs(store, "acme", stop=phase)
        runs.list_runs(store, "acme", parent_run_id="a-parent")
    # Then: the role allows Query on exactly those, and never on the table itself
    props = _resources("AWS::Serverless::Function")["RunsApiFunction"]["Properties"]
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    query = [s for s in statements if "dynamodb:Query" in json.dumps(s["Action"])]
    assert len(query) == 1
    assert query[0]["Action"] == "dynamodb:Query"
    assert query[0]["Resource"] == [{"Fn::Sub": f"${{{TABLE}.Arn}}/index/{index}"} for index in sorted(set(queried))]


def _checkov() -> Path:
    found = REPO_ROOT / ".local" / "checkov" / "bin" / "checkov"
    if not found.exists():
        pytest.fail("checkov not installed in .local/checkov: run `make install`")
    return found


@pytest.mark.slow
def test_checkov_finds_nothing_but_the_findings_the_template_accepts_each_with_its_reason():
    # When
    result = subprocess.run(
        [str(_checkov()), "-f", str(TEMPLATE_PATH), "--framework", "cloudformation", "--skip-download", "-o", "json"],
        cwd=REPO_ROOT,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Then: no failed check; every skipped one is skipped in the resource's own Metadata with one line of reason
    report = json.loads(result.stdout)
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert failed == [], "checkov findings without a fix or a reasoned skip:\n" + "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0
    for check in report["results"]["skipped_checks"]:
        comment = check["check_result"].get("suppress_comment") or ""
        assert comment.strip(), f"{check['check_id']} {check['resource']} is skipped without a reason"
        assert "\n" not in comment, f"{check['check_id']} {check['resource']}: the reason is one line"
