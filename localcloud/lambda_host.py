"""One Lambda execution environment on loopback: the handler from its built package.

Started as `python -I -S -B localcloud/lambda_host.py` with the unpacked package as working
directory (the local cloud's isolation, localcloud/app_hosts.py): no site-packages, no PYTHON*
variables; the package root goes first on sys.path, as Lambda puts /var/task there. So the
handler imports only what the package holds. Standard library only, for the same reason.

Protocol with the parent: one JSON line per invocation on stdin (`{"event": ..., "remaining_ms":
N}`), one JSON line per answer on stdout (`{"answer": ...}` or `{"crash": "<type>"}`). It keeps
serving invocations in the one process, so module state (the credential, its token cache)
survives between them as in a warm Lambda; it exits at end of input.
"""

from __future__ import annotations

import json
import os
import sys
import time

HANDLER = ("lambda_function", "handler")


class Context:
    """The part of Lambda's context object the handler uses."""

    def __init__(self, remaining_ms: int) -> None:
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    sys.path.insert(0, os.getcwd())
    module = __import__(HANDLER[0])
    handler = getattr(module, HANDLER[1])
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"answer": handler(request["event"], Context(int(request["remaining_ms"])))}
        except Exception as exc:  # an unhandled error, as Lambda reports it: the type only
            answer = {"crash": type(exc).__name__}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
