"""torch and scipy.stats are imported under one lock (viewer.torch_import): importing scipy.stats runs scipy's
array-API checks, which fail on a torch module another thread is still initialising (that killed
`radscope demo` in 1 of 3 starts); and scipy.stats is imported only where used (~40 MB)."""

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


def test_scipy_stats_waits_while_torch_is_imported() -> None:
    """A thread importing torch through import_torch holds the lock until torch is whole: import_scipy_stats
    on another thread (started while torch is half-way: the import is slowed by a finder) succeeds and
    finishes only after torch's import."""
    proc = _python("""
        import sys, threading, time
        events = []
        torch_started = threading.Event()

        class Slow:  # makes torch's import take a while, and says when it has begun
            def find_spec(self, name, path=None, target=None):
                if name == "torch":
                    torch_started.set()
                    time.sleep(1.0)
                return None

        sys.meta_path.insert(0, Slow())
        from viewer.import_lock import import_scipy_stats
        from viewer.torch_import import import_torch

        def load_torch():
            import_torch()
            events.append("torch")

        t = threading.Thread(target=load_torch)
        t.start()
        torch_started.wait(30)
        stats = import_scipy_stats()
        events.append("stats")
        t.join()
        print(events, stats.__name__, "torch" in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "['torch', 'stats'] scipy.stats True"


def test_the_viewer_core_and_the_torch_import_bring_no_scipy_stats() -> None:
    """The review summary's statistics come in when a summary is computed, not with its module or torch."""
    proc = _python("""
        import sys
        import viewer.review.summary
        from viewer.torch_import import import_torch
        import_torch()
        before = "scipy.stats" in sys.modules
        lo, hi = viewer.review.summary.wilson_interval(3, 10)
        print(before, "scipy.stats" in sys.modules, round(lo, 4), round(hi, 4))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False True 0.1078 0.6032"
