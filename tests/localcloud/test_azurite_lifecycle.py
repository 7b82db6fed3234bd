"""Azurite never outlives its owner: stop() ends it promptly, a killed owner takes it along, and a
start that cannot listen fails fast instead of waiting out the port timeout."""

from __future__ import annotations

import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.azurite import Azurite
from localcloud.certs import TlsFiles, make_tls_files
from localcloud.net import LOOPBACK

REPO = Path(__file__).resolve().parents[2]

# The owner starts Azurite from a worker thread (as LocalCloud does), has it serve a request
# (after which Azurite ignores SIGTERM), prints "<pid> <port>" and waits to be killed.
OWNER = """
import sys, threading, time
from pathlib import Path
from localcloud.azurite import Azurite
from localcloud.certs import make_tls_files
from tests.localcloud.test_azurite_lifecycle import serve_one_request

tls = make_tls_files(Path(sys.argv[1]))
azurite = Azurite(tls)
starter = threading.Thread(target=azurite.start)
starter.start()
starter.join()
serve_one_request(azurite, tls)
print(azurite.pid, azurite.port, flush=True)
time.sleep(600)
"""


def serve_one_request(azurite: Azurite, tls: TlsFiles) -> None:
    """An unauthenticated list call: Azurite answers 403, which is all that is needed."""
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    try:
        with urllib.request.urlopen(
            f"{azurite.blob_endpoint}?comp=list", context=context, timeout=10
        ):
            pass
    except urllib.error.HTTPError as error:
        assert error.code == 403


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def gone_within(seconds: float, pid: int, port: int) -> bool:
    """Whether the process ends and its port closes within `seconds` (a process whose main thread
    has exited can show as a zombie while its other threads, and its sockets, still close)."""
    deadline = time.monotonic() + seconds
    while running(pid) or listening(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def reap() -> Iterator[list[int]]:
    """Process groups to SIGKILL after the test, should a check fail with Azurite still up."""
    groups: list[int] = []
    yield groups
    for group in groups:
        if running(group):
            os.killpg(group, signal.SIGKILL)


def test_azurite_dies_with_an_owner_killed_by_sigkill(tmp_path: Path, reap: list[int]) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        ready, _, _ = select.select([owner.stdout], [], [], 60)
        line = owner.stdout.readline() if ready else ""
        assert line, f"the owner did not start Azurite: {owner.stderr.read() if ready else ''}"
        pid, port = (int(field) for field in line.split())
        reap.append(pid)
        assert running(pid) and listening(port)

        owner.kill()  # SIGKILL: no atexit, no finally, no stop()
        owner.wait()

        assert gone_within(5, pid, port), "Azurite outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for stream in (owner.stdout, owner.stderr):
            if stream is not None:
                stream.close()


def test_stop_is_prompt_and_leaves_nothing(tls: TlsFiles, reap: list[int]) -> None:
    azurite = Azurite(tls).start()
    pid = azurite.pid
    assert pid is not None
    reap.append(pid)
    serve_one_request(azurite, tls)  # from now on Azurite ignores SIGTERM

    process = azurite._process
    assert process is not None
    azurite.stop()

    # Killed, not asked: a SIGTERM would be ignored now and stop() would wait on it. Asserting
    # how it ended, not how long it took, holds on a busy machine too.
    assert process.returncode == -signal.SIGKILL
    assert azurite.pid is None
    # stop() waited for the process, so it and its listener are gone already.
    assert not running(pid)
    assert not listening(azurite.port)


def test_start_fails_fast_when_azurite_exits(tls: TlsFiles) -> None:
    azurite = Azurite(tls)
    # Bound but not listening: Azurite's listen fails (EADDRINUSE) and nothing accepts meanwhile.
    with socket.socket() as taken:
        taken.bind((LOOPBACK, azurite.port))
        try:
            # "exited" (a RuntimeError), not wait_for_port's TimeoutError after 30 s: start()
            # noticed the dead process instead of waiting out its deadline.
            with pytest.raises(RuntimeError, match="exited"):
                azurite.start()
        finally:
            azurite.stop()
