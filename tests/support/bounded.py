"""Run a hostile input in a child process with a memory cap, so that a regression (a guard that no longer
holds: reading /dev/zero whole, inflating a bomb) fails one test with a MemoryError instead of growing a
pytest-xdist worker until the kernel's OOM killer takes it (and whatever else runs on the machine)."""

from __future__ import annotations

import json
import subprocess
import sys

CAP_BYTES = 3 * 2**30
"""Private memory (RLIMIT_DATA: heap and anonymous mappings) the child may hold: torch needs ~1 GiB."""

_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_DATA, ({cap}, {cap}))
{setup}
try:
    {call}
except MemoryError:
    print(json.dumps({{"error": "MemoryError", "message": "the memory cap was reached"}}))
except Exception as exc:
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc)}}))
else:
    print(json.dumps({{"error": None, "message": ""}}))
"""


def run_capped(setup: str, call: str, arg: str, timeout: float = 600) -> tuple[str | None, str]:
    """(exception class name or None, its message) of ``call`` run after ``setup`` in a child whose private
    memory is capped at :data:`CAP_BYTES`; ``arg`` is the child's ``sys.argv[1]``."""
    code = _CHILD.format(cap=CAP_BYTES, setup=setup, call=call)
    proc = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc["error"], doc["message"]
