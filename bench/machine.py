"""What the report says about the machine a run measured: cores, CPU, Python, DynamoDB Local, commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runstop_dev.ddb_local import jar_dir
from runstop_dev.template import REPO_ROOT


def dynamodb_local_version() -> str:
    """DynamoDB Local's own `-version` answer (it starts a JVM: a few seconds, run it beside the rows)."""
    root = jar_dir()
    classpath = os.pathsep.join([str(root / "DynamoDBLocal.jar"), str(root / "DynamoDBLocal_lib" / "*")])
    runner = "software.amazon.dynamodb.services.local.main.ServerRunner"
    out = subprocess.run(
        ["java", "-cp", classpath, runner, "-version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=root,
    )
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return f"{lines[-1] if lines else 'unknown'} ({root.name})"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(dynamodb_local: str) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "dynamodb_local": dynamodb_local,
        "commit": _git("rev-parse", "--short", "HEAD")
        + (" (with uncommitted changes)" if _git("status", "--porcelain") else ""),
    }
