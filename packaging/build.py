"""Build the RadScope demo laptop package and prove it works (``make package``).

    python packaging/build.py [--head] [--skip-build] [--no-archive] [--venv-self-test]

1. Checks the tools: PyInstaller at the version pinned in constraints.txt (installed with that pin when
   missing) and a CPU-only torch (no CUDA build, no nvidia-* packages).
2. Stages ``build/package/resources``: the repository's ``resources/`` (bundled models) plus the demo study,
   generated once into ``build/package/demo-study`` (reused while its version matches), so the laptop
   never generates it at first start (that takes ~15 s; opening the bundled copy takes under a second).
3. Runs PyInstaller on ``packaging/radscope.spec``: one folder, ``dist/radscope/`` (``radscope`` inside).
   ``--head`` builds the committed HEAD (exported to ``build/package/src``) instead of the working tree:
   in a checkout shared with people editing, their half-saved files never reach the package.
4. Checks the folder: no CUDA libraries, no test or development packages.
5. Writes ``dist/radscope-<version>-<platform>.tar.gz`` and prints the size on disk and compressed.
6. Runs the frozen app's self-test (``radscope --self-test``) from an empty folder with a fresh
   ``RADSCOPE_HOME``, in a network namespace without interfaces when ``unshare -n`` works (root on Linux),
   and prints its line; ``--venv-self-test`` also runs it from the virtual environment for comparison.

Exits non-zero, naming the reason, when any step fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "radscope.spec"
WORK = ROOT / "build" / "package"
DIST = ROOT / "dist"
APP = DIST / "radscope"
DEMO_MODEL = "chest-nodule-demo"
SELF_TEST_TIMEOUT_S = 600

FORBIDDEN_FILES = ("libcudart", "libcublas", "libcudnn", "libnccl", "libnvrtc", "libnvJitLink", "libcufft",
                   "libcusparse", "libcurand", "libcusolver", "libtorch_cuda", "libc10_cuda", "libQt6WebEngine",
                   "libQt6Quick", "libQt6Qml", "libQt63D", "libQt6Multimedia")
FORBIDDEN_PACKAGES = ("tests", "pytest", "_pytest", "hypothesis", "captum", "matplotlib", "nvidia", "triton",
                      "torchvision", "pydicom_data", "importlinter", "ray", "mypy")


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[package] {msg}", flush=True)


# -- 1. tools ---------------------------------------------------------------------------------------
def pinned(name: str) -> str:
    """The exact version of ``name`` in constraints.txt."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        pkg, _, version = line.strip().partition("==")
        if pkg.lower().replace("_", "-") == name.lower():
            return version
    raise BuildError(f"constraints.txt: no pin for {name}")


def ensure_pyinstaller() -> str:
    want = pinned("pyinstaller")
    try:
        have = importlib.metadata.version("pyinstaller")
    except importlib.metadata.PackageNotFoundError:
        have = ""
    if have != want:
        log(f"installing pyinstaller=={want} (found {have or 'none'})")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
                        f"pyinstaller=={want}"], check=True)
    return want


def check_cpu_torch() -> str:
    """The torch version, after checking it is a CPU build and no CUDA wheel is installed beside it."""
    nvidia = sorted({d.metadata["Name"] for d in importlib.metadata.distributions()
                     if (d.metadata["Name"] or "").lower().startswith(("nvidia-", "triton"))})
    if nvidia:
        raise BuildError(f"CUDA packages are installed in this environment ({', '.join(nvidia)}); "
                         "the laptop build needs the CPU torch only (see the Makefile's torch pin)")
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                         capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "None":
        raise BuildError(f"torch {out[0]} is a CUDA {out[1]} build; install the CPU build "
                         f"(torch=={pinned('torch')}, as the Makefile does)")
    return out[0]


# -- 2. resources -----------------------------------------------------------------------------------
def export_head() -> Path:
    """The committed HEAD, exported (``git archive``) to ``build/package/src``."""
    src = WORK / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    archive_bytes = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive_bytes, check=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    log(f"building HEAD {commit} (exported to {src.relative_to(ROOT)})")
    return src


def demo_study(src: Path) -> Path:
    """A valid demo study: ``resources/demo-study`` when committed, else generated (cached) under build/."""
    sys.path.insert(0, str(src))  # the generator of the tree being packaged (before the editable install)
    from viewer.dicom import synthetic

    committed = src / "resources" / "demo-study"
    if synthetic._valid_demo(committed):
        return committed
    cached = WORK / "demo-study"
    if synthetic._valid_demo(cached):
        log(f"demo study: reusing {cached.relative_to(ROOT)}")
        return cached
    log("demo study: generating (once) ...")
    t0 = time.perf_counter()
    tmp = cached.with_name("demo-study.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    synthetic.generate_demo_study(tmp)
    shutil.rmtree(cached, ignore_errors=True)
    tmp.rename(cached)
    log(f"demo study: generated in {time.perf_counter() - t0:.1f} s")
    return cached


def stage_resources(src: Path) -> Path:
    """``build/package/resources``: the tree's resources plus the demo study."""
    if not (src / "resources" / "models" / DEMO_MODEL / "radscope-model.json").is_file():
        raise BuildError(f"resources/models/{DEMO_MODEL} is missing: the laptop build bundles the demo model")
    stage = WORK / "resources"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(src / "resources", stage, ignore=shutil.ignore_patterns("__pycache__", "demo-study", "*.pyc"))
    shutil.copytree(demo_study(src), stage / "demo-study")
    return stage


# -- 3. build ----------------------------------------------------------------------------------------
def run_pyinstaller(src: Path, resources: Path) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", str(DIST), "--workpath", str(WORK / "pyinstaller"), str(src / SPEC.relative_to(ROOT)),
           "--", "--resources", str(resources)]
    log("pyinstaller: " + " ".join(cmd[1:]))
    # collecting torch's submodules imports them all: hundreds of DeprecationWarnings, none ours
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning,ignore::FutureWarning")
    subprocess.run(cmd, check=True, cwd=src, env=env)
    return time.perf_counter() - t0


# -- 4. checks ---------------------------------------------------------------------------------------
def check_contents(app: Path) -> None:
    internal = app / "_internal"
    bad_files = [p for p in app.rglob("*") if p.name.startswith(FORBIDDEN_FILES)]
    bad_pkgs = [internal / name for name in FORBIDDEN_PACKAGES if (internal / name).exists()]
    bad = bad_files + bad_pkgs
    if bad:
        raise BuildError("the package holds what it must not: " + ", ".join(str(p.relative_to(app)) for p in bad[:10]))
    for need in ("resources/models/" + DEMO_MODEL + "/radscope-model.json", "resources/demo-study/truth.json"):
        if not (internal / need).is_file():
            raise BuildError(f"the package lacks _internal/{need}")


# -- 5. sizes ----------------------------------------------------------------------------------------
def size_on_disk(folder: Path) -> int:
    """Bytes of every regular file under ``folder`` (symbolic links not followed)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def largest(folder: Path, n: int = 6) -> list[tuple[str, int]]:
    files = [(str(p.relative_to(folder)), p.lstat().st_size)
             for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return sorted(files, key=lambda f: -f[1])[:n]


def archive(app: Path, version: str) -> Path:
    out = DIST / f"radscope-{version}-{platform.system().lower()}-{platform.machine()}.tar.gz"
    t0 = time.perf_counter()
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(app, arcname="radscope")
    log(f"archive: {out.relative_to(ROOT)} in {time.perf_counter() - t0:.1f} s")
    return out


# -- 6. self-test ------------------------------------------------------------------------------------
def network_namespace() -> list[str]:
    """``unshare -n`` (a network namespace with only a downed loopback) when it works here, else nothing."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def self_test(cmd: list[str], label: str, cwd: Path | None = None, extra: tuple[str, ...] = ()) -> dict:
    """Run ``cmd --self-test`` isolated (empty folder, fresh RADSCOPE_HOME, no network); its report."""
    with tempfile.TemporaryDirectory(prefix="radscope-selftest-") as tmp:
        home, report = Path(tmp) / "home", Path(tmp) / "report.json"
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RADSCOPE_HOME", "DISPLAY", "WAYLAND_DISPLAY")}
        env.update(RADSCOPE_HOME=str(home), QT_QPA_PLATFORM="offscreen")
        netns = network_namespace()
        png = WORK / f"self-test-{label}.png"
        full = netns + cmd + ["--self-test", *extra, "--report", str(report), "--out", str(png)]
        isolation = "network namespace without interfaces" if netns else "network NOT isolated"
        log(f"self-test ({label}, {isolation}): " + " ".join(full))
        proc = subprocess.run(full, cwd=cwd or tmp, env=env, capture_output=True, text=True,
                              timeout=SELF_TEST_TIMEOUT_S)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("radscope self-test:")]
        print(lines[-1] if lines else proc.stdout[-2000:], flush=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise BuildError(f"{label} self-test failed (exit {proc.returncode})")
        result = json.loads(report.read_text())
        result["network_namespace"] = bool(netns)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/build.py", description=__doc__.split("\n")[0])
    parser.add_argument("--head", action="store_true", help="build the committed HEAD, not the working tree")
    parser.add_argument("--skip-build", action="store_true", help="check and self-test the existing dist/radscope")
    parser.add_argument("--no-archive", action="store_true", help="do not write the .tar.gz")
    parser.add_argument("--venv-self-test", action="store_true", help="also run the self-test from the venv")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        summary: dict = {"pyinstaller": ensure_pyinstaller(), "torch": check_cpu_torch()}
        version = importlib.metadata.version("radscope")
        if not args.skip_build:
            src = export_head() if args.head else ROOT
            resources = stage_resources(src)
            summary["build_seconds"] = round(run_pyinstaller(src, resources), 1)
        if not (APP / "radscope").is_file():
            raise BuildError(f"{APP}/radscope does not exist; build first")
        check_contents(APP)
        summary["size_on_disk_bytes"] = size_on_disk(APP)
        if not args.no_archive:
            tgz = archive(APP, version)
            summary["archive"] = str(tgz.relative_to(ROOT))
            summary["archive_bytes"] = tgz.stat().st_size
        summary["frozen_self_test"] = self_test([str(APP / "radscope")], "frozen")
        if args.venv_self_test:
            # the staged study: a venv run would otherwise generate it first (~15 s), which the laptop never does
            summary["venv_self_test"] = self_test([sys.executable, "-m", "viewer.cli"], "venv", cwd=ROOT,
                                                  extra=("--study", str(WORK / "resources" / "demo-study")))
    except (BuildError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"[package] FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
    (WORK / "summary.json").write_text(json.dumps(summary, indent=1))
    mib = 1024 * 1024
    log("largest files: " + ", ".join(f"{name} {size / mib:.0f} MiB" for name, size in largest(APP)))
    log(f"size on disk: {summary['size_on_disk_bytes'] / mib:.0f} MiB ({APP.relative_to(ROOT)}/)")
    if "archive_bytes" in summary:
        log(f"compressed: {summary['archive_bytes'] / mib:.0f} MiB ({summary['archive']})")
    for key in ("frozen_self_test", "venv_self_test"):
        if key in summary:
            r = summary[key]
            load = r["load_average"][0] if r["load_average"] else "n/a"
            log(f"{key.split('_')[0]}: heatmap on screen {r['seconds_to_heatmap_on_screen']:.1f} s after start "
                f"({r['cpu_seconds_to_heatmap']:.1f} s of CPU), all {r['n_slices']} slices "
                f"{r['seconds_to_all_slices']:.1f} s ({os.cpu_count()} CPU cores, load average {load})")
    built = f" (pyinstaller {summary['build_seconds']:.0f} s)" if "build_seconds" in summary else ""
    log(f"OK in {summary['total_seconds']:.0f} s{built}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
