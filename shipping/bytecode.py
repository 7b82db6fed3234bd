"""Bytecode for the package, compiled by the Python that will run it.

Flex Consumption mounts the deployment package read-only
(https://learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package), so
the worker can never write `__pycache__`: without bytecode in the package every cold instance
compiles every module it imports (about a second for this app). Bytecode is specific to a
Python minor version (its magic number), so it must be compiled by the target Python, not by
whatever runs `pulumi up`: `find_compiler` looks for one, `compile_sources` runs it.

The pycs are hash-based and unchecked (PEP 552, `PycInvalidationMode.UNCHECKED_HASH`): they hold
a hash of their source instead of its mtime, so the zip stays byte-identical across builds
(file times never enter it), and the importer uses them without reading the source at all
(checked pycs would hash every source file on every cold start). Unchecked is safe here because a
pyc never outlives its source: the builder compiles every pyc from the very file beside it in the
same build, the build cache's key covers every source (shipping/build.py `cache_key`), a changed
source therefore gives a new zip with a new sha256, and One Deploy replaces the whole package
(shipping/onedeploy.py redeploys exactly when the sha256 changes). Nothing edits files on the
read-only mount. What must never happen is patching a `.py` inside a built zip by hand: its old
pyc would still run (tests/shipping/test_bytecode.py shows both). Python looks for the pycs in
`__pycache__` beside each source unless PYTHONPYCACHEPREFIX moves the cache elsewhere; the
Functions Python worker does not set it (Azure/azure-functions-python-worker#1665, 2025: the
maintainers declined to set it by default), and no app setting of this project must.

Finding the target Python, for pythonVersion 3.X: the interpreter named by the environment
variable `CROSSCLOUD_PYTHON_3_X` (e.g. `CROSSCLOUD_PYTHON_3_12=/opt/python3.12/bin/python3`),
else the running interpreter if it is 3.X, else `python3.X` on PATH. Each candidate is asked for
its version and must be CPython 3.X (a pyenv shim for a version that is not activated fails
that, and the next candidate is tried). With none, the package ships without bytecode - it runs
as before, only its cold starts compile - and one warning says what to install; `pulumi up`
never fails for it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT_SECONDS = 20.0
"""How long a candidate interpreter may take to say which Python it is."""
COMPILE_TIMEOUT_SECONDS = 300.0
"""Longest the compilation of a package may take (about 1,000 files: a few seconds)."""

_PROBE = (
    "import importlib.util, json, sys\n"
    "print(json.dumps({'implementation': sys.implementation.name,"
    " 'version': list(sys.version_info[:3]), 'cache_tag': sys.implementation.cache_tag,"
    " 'magic': importlib.util.MAGIC_NUMBER.hex(), 'executable': sys.executable}))\n"
)

# Runs in the target interpreter: stdin is [[zip name, source file], ...] and the output folder is
# argv[1]; stdout the zip names of the pycs written. `dfile` (the file name recorded in the code
# object) is the zip name, not the build's temporary path, so the bytes do not depend on where
# the build ran; the importer replaces it with the real path when it loads the pyc anyway.
_COMPILE = """
import importlib.util, json, py_compile, sys
from pathlib import Path

out = Path(sys.argv[1])
written = []
for name, source in json.load(sys.stdin):
    pyc = importlib.util.cache_from_source(name)
    try:
        py_compile.compile(
            source, cfile=str(out / pyc), dfile=name, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError:
        continue  # not valid for this Python: it could not be imported either; ship the source
    written.append(pyc)
json.dump(written, sys.stdout)
"""


@dataclass(frozen=True)
class Compiler:
    """A CPython interpreter of the target version, as it described itself."""

    executable: str
    version: str
    """Full version, e.g. "3.12.1" (part of the build cache key: a compiler fix changes pycs)."""
    cache_tag: str
    """e.g. "cpython-312": the pycs are `__pycache__/<module>.<cache_tag>.pyc`."""
    magic: str
    """importlib.util.MAGIC_NUMBER of that interpreter, hex: what the pycs start with."""


def environment_variable(python_version: str) -> str:
    """The variable that may name the interpreter for `python_version` ("3.12" ->
    CROSSCLOUD_PYTHON_3_12)."""
    return "CROSSCLOUD_PYTHON_" + python_version.replace(".", "_")


def find_compiler(python_version: str) -> Compiler | None:
    """The interpreter that compiles bytecode for `python_version`, or None (after one warning on
    stderr per process and version, naming what to install)."""
    found = _find(python_version, os.environ.get(environment_variable(python_version), ""))
    if found is None:
        _warn_once(python_version)
    return found


@functools.cache
def _find(python_version: str, named: str) -> Compiler | None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        named,
        sys.executable if running == python_version else "",
        shutil.which(f"python{python_version}") or "",
    ]
    for candidate in candidates:
        compiler = _probe(candidate, python_version) if candidate else None
        if compiler:
            return compiler
    return None


@functools.cache
def _warn_once(python_version: str) -> None:
    print(
        f"warning: no Python {python_version} found to compile the function package's bytecode; "
        f"it ships without it and every cold start compiles what it imports. Install Python "
        f"{python_version} (`python{python_version}` on PATH) or name one in "
        f"{environment_variable(python_version)}.",
        file=sys.stderr,
        flush=True,
    )


def _probe(executable: str, python_version: str) -> Compiler | None:
    try:
        result = subprocess.run(  # noqa: S603 - an interpreter the builder was pointed at
            [executable, "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
        described = json.loads(result.stdout) if result.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not isinstance(described, dict) or described.get("implementation") != "cpython":
        return None
    version = [str(part) for part in described.get("version", [])]
    if ".".join(version[:2]) != python_version:
        return None
    # The interpreter's own path, not a launcher's: a pyenv shim resolves the version from the
    # environment, which the compile step does not pass on.
    real = described.get("executable") or executable
    return Compiler(real, ".".join(version), described["cache_tag"], described["magic"])


class CompileError(RuntimeError):
    """The target interpreter could not compile the package (it crashed or did not finish)."""


def compile_sources(
    compiler: Compiler, sources: list[tuple[str, Path]], out_dir: Path
) -> list[tuple[str, Path]]:
    """Compile `sources` (zip name, file) with `compiler` into `out_dir`; returns (zip name, file)
    of every pyc, each in `__pycache__` beside its source's zip name.

    The bytes depend only on the sources and the interpreter: marshal writes set constants
    (`x in {"a", "b"}`) sorted since Python 3.10 (bpo-37596, for reproducible builds), and the
    hash seed is pinned anyway (PYTHONHASHSEED=0) so that nothing ordered by string hashes can
    vary; tests/shipping/test_bytecode.py builds twice and compares. Hence no `-I` (it ignores
    PYTHON* variables): `-P -S -s` keep the working folder and any site-packages off sys.path.
    A file the target cannot compile (syntax of another Python) is left without a pyc.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(  # noqa: S603 - the target interpreter found above
            [compiler.executable, "-P", "-S", "-s", "-c", _COMPILE, str(out_dir)],
            input=json.dumps([[name, str(path)] for name, path in sources]),
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT_SECONDS,
            check=False,
            cwd=out_dir.parent,
            env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
        )
    except subprocess.TimeoutExpired:
        raise CompileError(
            f"{compiler.executable} did not compile the package within "
            f"{COMPILE_TIMEOUT_SECONDS:g} s"
        ) from None
    if result.returncode != 0:
        raise CompileError(
            f"{compiler.executable} could not compile the package (exit {result.returncode}):\n"
            f"{result.stderr.strip()[-2000:]}"
        )
    return sorted((name, out_dir / name) for name in json.loads(result.stdout))
