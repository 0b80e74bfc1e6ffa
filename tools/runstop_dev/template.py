"""Read what the local runner and the tests need from template.yaml (the one definition)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
TABLE_RESOURCE = "RunsTable"
LOCAL_STACK_NAME = "runstop"
PSEUDO_PARAMETERS = {"AWS::StackName": LOCAL_STACK_NAME}
"""What CloudFormation's pseudo parameters resolve to locally."""


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data; cfn-lint's decoder understands !Ref, !Sub and friends."""
    from cfnlint.decode import cfn_yaml

    data: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(path))))
    return data


def resource(logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = load_template()["Resources"][logical_id]
    return found


def table_definition(table_name: str, logical_id: str = TABLE_RESOURCE) -> dict[str, Any]:
    """CreateTable arguments built from the template's own table resource."""
    props = resource(logical_id)["Properties"]
    definition: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        definition["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return definition


def ttl_attribute(logical_id: str = TABLE_RESOURCE) -> str | None:
    spec = resource(logical_id)["Properties"].get("TimeToLiveSpecification") or {}
    return spec.get("AttributeName") if spec.get("Enabled") else None


def table_resources() -> list[str]:
    """Logical ids of every DynamoDB table the template defines."""
    return [rid for rid, r in load_template()["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"]


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    module: str
    attribute: str


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function: Function

    @property
    def pattern(self) -> re.Pattern[str]:
        """`/runs/{run_id}/cancel` as a regex with one named group per path parameter."""
        parts = re.split(r"(\{[^}]+\})", self.path)
        regex = "".join(
            f"(?P<{p[1:-1].rstrip('+')}>{'.+' if p.endswith('+}') else '[^/]+'})" if p.startswith("{") else re.escape(p)
            for p in parts
        )
        return re.compile(f"^{regex}$")

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def function(logical_id: str) -> Function:
    props = {**load_template().get("Globals", {}).get("Function", {}), **resource(logical_id)["Properties"]}
    module, attribute = props["Handler"].rsplit(".", 1)
    return Function(logical_id, (REPO_ROOT / props["CodeUri"]).resolve(), module, attribute)


def functions() -> list[Function]:
    return [
        function(rid) for rid, r in load_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    ]


def http_routes() -> list[HttpRoute]:
    """Every HttpApi event of every function, as the deployed API would route them."""
    routes = []
    for rid, res in load_template()["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for event in (res["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                routes.append(
                    HttpRoute(event["Properties"]["Method"].upper(), event["Properties"]["Path"], function(rid))
                )
    # Literal segments beat parameters, as in API Gateway: /runs/cancel before /runs/{run_id}.
    return sorted(routes, key=lambda r: (r.path.count("{"), -len(r.path)))


def function_environment(logical_id: str, refs: dict[str, str]) -> dict[str, str]:
    """The function's environment variables with intrinsics resolved for a local run.

    `refs` maps logical ids (tables, queues...) to their local names, as CloudFormation
    would resolve `!Ref`; a parameter resolves to its default, a pseudo parameter to
    PSEUDO_PARAMETERS. Anything else is an error, not a guess.
    """
    template = load_template()
    parameters = template.get("Parameters", {})
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own_env = resource(logical_id)["Properties"].get("Environment", {}).get("Variables", {})
    env: dict[str, str] = {}
    for name, value in {**globals_env, **own_env}.items():
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            value = when_true if _condition_holds(condition) else when_false
            if value == {"Ref": "AWS::NoValue"}:
                continue
        if isinstance(value, str | int | float):
            env[name] = str(value)
        elif isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in refs:
            env[name] = refs[value["Ref"]]
        elif isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in PSEUDO_PARAMETERS:
            env[name] = PSEUDO_PARAMETERS[value["Ref"]]
        elif isinstance(value, dict) and set(value) == {"Ref"} and "Default" in parameters.get(value["Ref"], {}):
            default = parameters[value["Ref"]]["Default"]
            env[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
        else:
            raise KeyError(f"{logical_id}: environment variable {name} needs a local value for {value!r}")
    return env


def _condition_holds(name: str) -> bool:
    """Evaluate a template condition with parameter defaults (Not, Equals and Ref only)."""
    parameters = load_template().get("Parameters", {})

    def value(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return parameters[node["Ref"]].get("Default")
        if isinstance(node, dict) and set(node) == {"Fn::Not"}:
            return not value(node["Fn::Not"][0])
        if isinstance(node, dict) and set(node) == {"Fn::Equals"}:
            left, right = node["Fn::Equals"]
            return value(left) == value(right)
        if isinstance(node, dict) and set(node) == {"Condition"}:
            return _condition_holds(node["Condition"])
        if isinstance(node, dict):
            raise KeyError(f"condition {name}: {node!r} cannot be evaluated locally")
        return node

    return bool(value(load_template()["Conditions"][name]))


def function_timeout(logical_id: str) -> float:
    props = {**load_template().get("Globals", {}).get("Function", {}), **resource(logical_id)["Properties"]}
    return float(props.get("Timeout", 3))
