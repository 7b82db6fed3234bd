"""Azurite's Blob service on 127.0.0.1 over HTTPS with OAuth, started and stopped by its owner.

Facts (DESIGN.md section 5): `--oauth basic` needs HTTPS; Azurite then accepts bearer tokens whose
`iss` starts with `https://sts.windows.net/` and whose `aud` is a storage audience, without
checking the signature. `--skipApiVersionCheck` lets newer SDKs talk to it and
`--inMemoryPersistence` leaves nothing on disk.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from localcloud.certs import TlsFiles
from localcloud.net import LOOPBACK, free_port, wait_for_port

ACCOUNT = "devstoreaccount1"
REPO_ROOT = Path(__file__).resolve().parent.parent


def azurite_binary() -> str:
    """The Azurite Blob binary `npm ci` installed (package.json pins azurite@3.37.0)."""
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    found = shutil.which("azurite-blob")
    if found:
        return found
    raise FileNotFoundError("azurite-blob not found: run `make setup` (npm ci) first")


class Azurite:
    """Context manager: `with Azurite(tls) as azurite: azurite.blob_endpoint`."""

    def __init__(self, tls: TlsFiles) -> None:
        self.tls = tls
        self.port = free_port()
        self.blob_endpoint = f"https://{LOOPBACK}:{self.port}/{ACCOUNT}"
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Azurite:
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        log = open(Path(self._workdir.name) / "azurite.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self._process = subprocess.Popen(
            [
                azurite_binary(),
                "--blobHost",
                LOOPBACK,
                "--blobPort",
                str(self.port),
                "--oauth",
                "basic",
                "--cert",
                str(self.tls.server_cert),
                "--key",
                str(self.tls.server_key),
                "--skipApiVersionCheck",
                "--inMemoryPersistence",
                "--extentMemoryLimit",
                "256",
                "--disableProductStyleUrl",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # so stop() can end node and anything it spawned
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        wait_for_port(self.port, is_alive=lambda: self._process.poll() is None)
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            # Once it has served a request, Azurite ignores SIGTERM; it keeps everything in
            # memory, so there is nothing to flush and SIGKILL after a short grace is safe.
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None
        if self._workdir:
            self._log.close()
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
