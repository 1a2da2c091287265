"""The inference thread imports scipy.stats before torch (viewer.torch_import): scipy's array-API checks
fail on a torch module another thread is still initialising, which killed `radscope demo` in 1 of 3 starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_scipy_stats_fails_to_import_beside_a_half_built_torch() -> None:
    """The hazard itself: what another thread sees while torch initialises (a module without Tensor yet)."""
    proc = _python("""
        import sys, types
        sys.modules["torch"] = types.ModuleType("torch")  # as torch looks half-way through its import
        import scipy.stats
    """)
    assert proc.returncode != 0 and "has no attribute 'Tensor'" in proc.stderr, proc.stderr[-2000:]


def test_import_torch_brings_scipy_stats_in_first() -> None:
    proc = _python("""
        import sys
        order = []

        class Watch:
            def find_spec(self, name, path=None, target=None):
                if name in ("scipy.stats", "torch"):
                    order.append(name)
                return None

        sys.meta_path.insert(0, Watch())
        from viewer.torch_import import import_torch
        torch = import_torch()
        print(order, torch.__name__)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "['scipy.stats', 'torch'] torch"
