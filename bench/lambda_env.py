"""A Lambda-like Python environment for the cold and warm rows, made once and cached.

The dev virtualenv holds pyopenssl and awscrt (pulled in by aws-sam-cli), which botocore and
urllib3 import when they find them and which the Lambda runtime does not have; timing
imports there would measure the wrong thing. This environment holds only boto3 and the
layer's requirements, at the versions uv.lock pins, and the project's code comes from the
source tree on PYTHONPATH, as /var/task and /opt/python provide it in Lambda.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tomllib
from pathlib import Path

from runstop_dev.template import REPO_ROOT

VENV_DIR = REPO_ROOT / ".local" / "bench-lambda-venv"
LAYER_DIR = REPO_ROOT / "layers" / "runstop"
TOOLS_DIR = REPO_ROOT / "tools"
REQUIREMENTS = LAYER_DIR / "requirements.txt"
PYCACHE = VENV_DIR / "pycache"
"""Bytecode for every module, kept out of the source tree (PYTHONPYCACHEPREFIX)."""


def _constraints() -> str:
    """Every registry package of uv.lock at its locked version."""
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    pins = sorted(
        f"{p['name']}=={p['version']}"
        for p in lock["package"]
        if "version" in p and p.get("source", {}).get("registry")
    )
    return "\n".join(pins) + "\n"


def python() -> Path:
    return VENV_DIR / "bin" / "python"


def ensure() -> Path:
    """The environment's python, (re)built when uv.lock or the layer's requirements change."""
    constraints = _constraints()
    spec = hashlib.sha256((constraints + REQUIREMENTS.read_text()).encode()).hexdigest()
    marker = VENV_DIR / ".spec"
    if python().exists() and marker.exists() and marker.read_text() == spec:
        return python()
    # `uv run` (the Makefile's) names its own binary in UV; otherwise the pinned `python3 -m uv`.
    named = os.environ.get("UV", "")
    uv = [named] if named and Path(named).is_file() else shlex.split(named or "python3 -m uv")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    VENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*uv, "venv", "--quiet", "--clear", "--python", "3.13", str(VENV_DIR)], check=True, env=env)
    constraints_file = VENV_DIR / "constraints.txt"
    constraints_file.write_text(constraints)
    install = [*uv, "pip", "install", "--quiet", "--python", str(python()), "-c", str(constraints_file)]
    subprocess.run(
        [*install, "boto3", "-r", str(REQUIREMENTS)],
        check=True,
        env=env,
    )
    marker.write_text(spec)
    return python()


def packages() -> list[str]:
    """What the environment holds (name==version), for the report."""
    site = next((VENV_DIR / "lib").glob("python*/site-packages"))
    found = []
    for dist in sorted(site.glob("*.dist-info")):
        name, _, version = dist.name.removesuffix(".dist-info").partition("-")
        found.append(f"{name}=={version}")
    return found


def child_env(extra: dict[str, str], code_dir: Path | None = None, tools: bool = False) -> dict[str, str]:
    """A clean environment like a Lambda function's: its variables, no developer PYTHON* ones.

    tools=True puts the dev tools (runstop_dev: the fake Lambda context) on the path too, for
    children that measure per call, not imports.
    """
    paths = [str(code_dir)] if code_dir else []
    if tools:
        paths.append(str(TOOLS_DIR))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(VENV_DIR),
        "PYTHONPATH": os.pathsep.join([*paths, str(LAYER_DIR)]),
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        **extra,
    }
    return env
