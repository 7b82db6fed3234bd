"""Azurite's Blob service on 127.0.0.1 over HTTPS with OAuth, started and stopped by its owner.

Facts (docs/design.md "Emulators"): `--oauth basic` needs HTTPS; Azurite then accepts bearer tokens
whose `iss` starts with `https://sts.windows.net/` and whose `aud` is a storage audience, without
checking the signature. `--skipApiVersionCheck` lets newer SDKs talk to it and
`--inMemoryPersistence` leaves nothing on disk.

Azurite runs in its own process group, behind a watcher that ends the group when this process's
end of a pipe closes: when `stop()` closes it, and when this process dies, even by SIGKILL (a
process's pipes close with it, whichever thread started Azurite). Without it Azurite, which
ignores SIGTERM once it has served a request, would outlive a killed test run.
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

# `sh -c GUARD sh COMMAND...` runs COMMAND (exec: same pid, so `Popen.poll()` sees Azurite itself)
# after forking a watcher that holds the pipe on stdin; at end of file it SIGKILLs its process
# group, i.e. Azurite, anything Azurite spawned, and itself. Azurite gets /dev/null as stdin.
_GUARD = 'exec 3<&0; (read _ <&3; kill -9 0) & exec "$@" </dev/null 3<&-'


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

    @property
    def pid(self) -> int | None:
        """Azurite's process id while started (its process group id too)."""
        return self._process.pid if self._process else None

    def start(self) -> Azurite:
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        log = open(Path(self._workdir.name) / "azurite.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self._process = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                _GUARD,
                "sh",
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
            stdin=subprocess.PIPE,  # kept open until stop(): the watcher's lifeline
            start_new_session=True,  # its own process group, for the watcher to end
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        wait_for_port(self.port, is_alive=lambda: self._process.poll() is None)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # Once it has served a request, Azurite ignores SIGTERM; it keeps everything in
            # memory, so there is nothing to flush and SIGKILL is safe. End of file on the pipe
            # makes the watcher SIGKILL the group; should the watcher be gone, do it here.
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._workdir:
            self._log.close()
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
