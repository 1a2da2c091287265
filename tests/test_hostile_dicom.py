"""The hostile DICOM corpus (tests/hostile: areas ``dicom`` and ``archive``): every bad file, zip member or
DICOMDIR record is an error naming it and the reason (at scan or at load), or is loaded with a warning saying
what was ignored; the good series beside it still loads with finite geometry and values; the viewer and the
commands neither abort nor hide it. Plus the bounds: deflate bombs (peak RSS), zip caps, killed extraction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import Case, case_ids, cases
from tests.hostile._dicom import corrupt_j2k, good_series
from viewer.dicom import DicomFileError, FileError, load_volume, scan


def _scan_and_load(target: Path) -> tuple[int, list[FileError], list[str]]:
    """(stacks that load, every error met at scan or load time, the stacks' warnings); every loaded
    volume's geometry is finite."""
    result = scan([target])
    errors = list(result.errors)
    warnings: list[str] = []
    loaded = 0
    for stack in result.stacks:
        warnings.extend(stack.warnings)
        try:
            vol = load_volume(stack)
        except DicomFileError as exc:
            errors.append(exc.as_file_error())
            continue
        assert vol.array.shape[0] == stack.n_slices
        for value in (vol.origin, vol.spacing, vol.direction):
            assert np.all(np.isfinite(value)) and np.all(np.abs(value) < 1e6), (stack, value)
        assert vol.array.dtype == np.uint8 or np.all(np.isfinite(vol.array)), stack  # no NaN or infinity
        errors.extend(FileError(stack.stack_id, w) for w in vol.warnings if "could not be decoded and is blank" in w)
        warnings.extend(w for w in vol.warnings if w not in stack.warnings)
        loaded += 1
    return loaded, errors, warnings


def _assert_named(hostile: Case, folder: Path, errors: list[FileError]) -> None:
    """Every bad item (a name relative to the case's folder) is named in an error holding ``mentions``."""
    for name in hostile.extra.get("bad", ()):  # type: ignore[attr-defined]
        path = os.path.join(folder, name)  # not pathlib: it would collapse the "//" and "./" of member names
        about = [e.error for e in errors if e.path == path or path in e.error]
        assert about, (path, errors)
        for word in hostile.mentions:
            assert any(word.lower() in text.lower() for text in about), (word, about)


@pytest.mark.parametrize("hostile", cases("dicom") + cases("archive"), ids=case_ids)
def test_dicom_case_is_named_and_good_series_loads(hostile: Case, tmp_path: Path) -> None:
    folder = tmp_path / hostile.name
    target = hostile.build(folder)
    loaded, errors, warnings = _scan_and_load(target)
    assert loaded == hostile.good, errors
    if hostile.outcome in ("error", "refused"):
        assert hostile.extra.get("bad"), "an error case names what must be reported"
        _assert_named(hostile, folder, errors)
    elif hostile.outcome == "warning":
        assert any(all(w.lower() in text.lower() for w in hostile.mentions) for text in warnings), warnings
    else:
        assert errors == [], errors


def test_gdcm_really_aborts_on_the_corrupt_j2k(tmp_path: Path) -> None:
    """The case is a real hazard: pydicom's default plugin choice kills the process (what the thumbnail
    worker used to call)."""
    bad = corrupt_j2k(tmp_path / "bad.dcm")
    code = "import sys\nfrom pydicom.pixels import pixel_array\ntry:\n pixel_array(sys.argv[1])\nexcept Exception: pass"
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, timeout=120)
    assert proc.returncode == -6, proc  # SIGABRT


@pytest.fixture
def j2k_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    good_series(folder, n=5, rows=64, cols=64)
    corrupt_j2k(folder / "corrupt_j2k.dcm")
    return folder


def test_viewer_lists_corrupt_j2k_and_shows_good_series(window, j2k_folder: Path) -> None:  # type: ignore[no-untyped-def]
    window.open_paths([str(j2k_folder)])
    assert window.wait_idle(60)
    assert window.model is not None and window.model.volume.shape[0] == 5
    errors = dict(window.errors_panel.errors())
    bad = str(j2k_folder / "corrupt_j2k.dcm")
    assert bad in errors and "JPEG 2000" in errors[bad]
    assert window.errors_dock.isVisible()


def test_screenshot_of_folder_with_corrupt_j2k(j2k_folder: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "viewer.cli", str(j2k_folder), "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert shot.stat().st_size > 0
    assert f"radscope: {j2k_folder / 'corrupt_j2k.dcm'}: " in proc.stderr, proc.stderr


def _radscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "viewer.cli", *args], capture_output=True, text=True, timeout=300)


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"invalid JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def geometry_mess(tmp_path: Path) -> Path:
    """A good series, two of its slices with degenerate orientations, files with infinite/absurd geometry."""
    folder = tmp_path / "mess"
    for name in ("dicom-orientation-zeros", "dicom-orientation-nan", "dicom-absurd-position-infinity",
                 "dicom-absurd-spacing-1e300", "dicom-absurd-thickness-1e300"):
        next(c for c in cases("dicom") if c.name == name).build(folder / name)
    return folder


def test_commands_report_degenerate_and_absurd_geometry(geometry_mess: Path, tmp_path: Path) -> None:
    proc = _radscope("info", "--json", str(geometry_mess))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    doc = _strict_json(proc.stdout)
    assert isinstance(doc, dict)
    errors = {e["path"]: e["error"] for e in doc["errors"]}
    for name in ("zeros", "nan"):
        for k in (0, 1):
            assert "ImageOrientationPatient" in errors[str(geometry_mess / f"dicom-orientation-{name}" / f"bad_{k}.dcm")]
    warnings = " ".join(w for s in doc["series"] for w in s["warnings"])
    assert "ImagePositionPatient (Infinity" in warnings and "PixelSpacing (1e300" in warnings
    assert all(v is not None and v < 1e3 for s in doc["series"] for v in s["spacing_mm"])

    out = tmp_path / "vol.nii.gz"
    proc = _radscope("convert", str(geometry_mess / "dicom-orientation-nan"), str(out))
    assert proc.returncode == 0 and out.stat().st_size > 0, proc.stderr
    assert "Traceback" not in proc.stderr

    proc = _radscope("review", "flag", str(geometry_mess / "dicom-orientation-zeros"), "--slice", "1",
                     "--label", "nodule", "--verdict", "correct")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    proc = _radscope("review", "worklist", "--add", str(geometry_mess))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_infer_skips_degenerate_files(geometry_mess: Path, tmp_path: Path) -> None:
    folder = geometry_mess / "dicom-orientation-zeros"
    proc = _radscope("infer", str(folder), "--out", str(tmp_path / "out"), "--force")  # tiny air-only phantom
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"skipped {folder / 'bad_0.dcm'}: unusable ImageOrientationPatient" in proc.stderr
    assert "(4 slices" in proc.stderr


def test_viewer_shows_every_stack_of_a_geometry_mess(window, geometry_mess: Path) -> None:  # type: ignore[no-untyped-def]
    """Degenerate orientations are listed in the Errors panel; the stacks with ignored infinite/absurd values
    open one by one (with their warnings) and their geometry stays finite."""
    window.open_paths([str(geometry_mess)])
    assert window.wait_idle(60)
    errors = dict(window.errors_panel.errors())
    assert "zero vector" in errors[str(geometry_mess / "dicom-orientation-zeros" / "bad_1.dcm")]
    assert "finite" in errors[str(geometry_mess / "dicom-orientation-nan" / "bad_0.dcm")]
    assert len(window.stacks) == 8  # 5 good series + 3 odd files shown on their own
    for stack_id in list(window.stacks):
        window.show_stack(stack_id)
        assert window.wait_idle(60)
        volume = window.model.volume
        assert window.stack_id == stack_id and volume.shape[0] >= 1
        for value in (volume.origin, volume.spacing, volume.direction):
            assert np.all(np.isfinite(value)) and np.all(np.abs(value) < 1e6)
    warnings = " ".join(r for _, r in window.errors_panel.errors())
    assert "ImagePositionPatient (Infinity" in warnings and "SliceThickness (1e300" in warnings


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_zip_members_never_land_outside_the_extraction(tmp_path: Path, radscope_home: Path) -> None:
    before = _files_under(tmp_path)
    for name in ("zip-dotdot", "zip-absolute", "zip-symlink"):
        next(c for c in cases("archive") if c.name == name).build(tmp_path / name)
    made = _files_under(tmp_path) - before
    result = scan([tmp_path / n / "archive.zip" for n in ("zip-dotdot", "zip-absolute", "zip-symlink")])
    assert _files_under(tmp_path) - before == made  # nothing new beside the archives
    assert not Path("/tmp/radscope-evil.dcm").exists()
    root = next((radscope_home / "cache" / "zip").iterdir())
    extracted = {p.name for p in (radscope_home / "cache" / "zip").rglob("*") if p.is_file()}
    assert "evil.dcm" not in extracted and "evil2.dcm" not in extracted and "link.dcm" not in extracted
    assert not any(p.is_symlink() for p in (radscope_home / "cache").rglob("*"))
    assert len(result.stacks) == 3 and root.exists()


def test_zip_member_count_and_size_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from viewer.dicom import archives

    zip_path = next(c for c in cases("archive") if c.name == "zip-duplicate").build(tmp_path / "z")
    monkeypatch.setattr(archives, "MAX_MEMBERS", 3)
    [error] = scan([zip_path]).errors
    assert error.path == str(zip_path) and "members" in error.error and "refused" in error.error
    monkeypatch.setattr(archives, "MAX_MEMBERS", 100)
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 4096)
    errors = scan([zip_path]).errors
    assert any(e.path == str(zip_path) and "expands to" in e.error for e in errors), errors
    zip_root = Path(os.environ["RADSCOPE_HOME"]) / "cache" / "zip"
    assert not zip_root.exists() or not any(zip_root.iterdir())  # refused before anything is written


KILL_CHILD = """
import os, signal, sys, threading, time
from pathlib import Path
from viewer.dicom.archives import zip_root
from viewer.dicom.sources import collect

root = zip_root()
threading.Thread(target=collect, args=([sys.argv[1]],), daemon=True).start()
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    partial = [p for p in root.iterdir() if p.name.endswith(".partial")]
    if partial and sum(1 for _ in partial[0].rglob("*.dcm")) >= 20:
        os.kill(os.getpid(), signal.SIGKILL)  # mid-way through the extraction
    time.sleep(0.002)
sys.exit(3)
"""


def test_killed_extraction_leaves_nothing_the_next_start_trusts(tmp_path: Path, radscope_home: Path) -> None:
    import zipfile

    from tests.hostile._dicom import good_series

    files = good_series(tmp_path / "src", n=2)
    zip_path = tmp_path / "many.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as zf:
        for n in range(1500):
            zf.write(files[n % 2], f"f/{n:05d}.dcm")
    proc = subprocess.run([sys.executable, "-c", KILL_CHILD, str(zip_path)], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr  # SIGKILL
    root = radscope_home / "cache" / "zip"
    [stale] = list(root.iterdir())
    assert stale.name.endswith(".partial") and 20 <= len(list(stale.rglob("*.dcm"))) < 1500

    from viewer.dicom import archives

    archives._cleaned.discard(str(root))  # a new process: the next start
    scan([tmp_path / "src"])  # any scan, no zip opened
    assert not stale.exists()
    result = scan([zip_path])
    [folder] = list(root.iterdir())
    assert not folder.name.endswith(".partial") and len(list(folder.rglob("*.dcm"))) == 1500
    assert result.errors == [] and sum(s.n_slices for s in result.stacks) == 2


# The child's own peak (VmHWM of its address space). Not ru_maxrss: Linux carries the parent's peak RSS across
# fork/exec into it, so a 600 MB xdist worker late in a full run made this 100 MB child read 600 MB.
PEAK_RSS = """
import json, sys
from viewer.dicom import DicomFileError, load_volume, scan

result = scan([sys.argv[1]])
errors = [[e.path, e.error] for e in result.errors]
for stack in result.stacks:
    try:
        load_volume(stack)
    except DicomFileError as exc:
        errors.append([exc.path, exc.reason])
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"errors": errors, "peak_mb": peak_kb / 1024}))
"""


@pytest.mark.parametrize("where", ["private", "pixels", "long-meta"])
def test_deflate_bomb_is_refused_with_bounded_memory(tmp_path: Path, where: str) -> None:
    """1 MB inflating to 1 GiB: pydicom's own inflate peaked at 2.1 GB (header bomb) and 3.2 GB (pixel
    bomb); the bounded inflater stops at what the header can need (32 MiB of header slack here)."""
    from tests.hostile._dicom import deflate_bomb

    bomb = deflate_bomb(tmp_path / "bomb.dcm", where=where.replace("long-meta", "private"),
                        long_meta=where == "long-meta")
    assert bomb.stat().st_size < 2 * 1024**2
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, str(bomb)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [path for path, _ in doc["errors"]] == [str(bomb)]
    assert "deflate bomb" in doc["errors"][0][1]
    assert doc["peak_mb"] < 500, doc


def test_deflated_file_still_loads(tmp_path: Path) -> None:
    from tests.conftest import pydicom_test_file

    src = pydicom_test_file("image_dfl.dcm")
    [stack] = scan([src]).stacks
    vol = load_volume(stack)
    import pydicom

    np.testing.assert_array_equal(vol.array[0], pydicom.dcmread(src).pixel_array.astype(np.float32))
    assert stack.read_header(0).SOPInstanceUID == pydicom.dcmread(src).SOPInstanceUID


def test_corrupt_duplicate_gives_way_to_the_good_one(tmp_path: Path) -> None:
    import pydicom

    from tests.hostile._dicom import corrupt_duplicate, good_series

    files = good_series(tmp_path)
    bad = corrupt_duplicate(files[2], tmp_path / "a_dup.dcm")
    [stack] = scan([tmp_path]).stacks
    assert stack.files[2] == str(bad)  # sorted first at that position
    vol = load_volume(stack)
    good = pydicom.dcmread(files[2])
    np.testing.assert_array_equal(vol.array[2], good.pixel_array.astype(np.float32) - 1024)
    assert vol.sop_instance_uids[2] == good.SOPInstanceUID and vol.source_files[2] == str(files[2])
    assert any(str(bad) in w and "used instead" in w for w in vol.warnings)
    assert not any("blank" in w for w in vol.warnings)


_NAME_PART = st.sampled_from(["..", ".", "", "a", "A", "b.dcm", "B.DCM", "e\u0301", "\u00e9", "/", "\\", "C:",
                              "x" * 300, "\x07", " ", "series"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.lists(_NAME_PART, min_size=1, max_size=4).map("/".join).filter(bool), min_size=1, max_size=8))
def test_fuzzed_zip_member_names_stay_inside(tmp_path: Path, names: list[str]) -> None:
    """Any member names: no exception, nothing outside the extraction folder, every member extracted once or
    named in an error."""
    import uuid
    import zipfile

    work = tmp_path / uuid.uuid4().hex
    work.mkdir()
    archive = work / "fuzz.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n, name in enumerate(names):
            zf.writestr(zipfile.ZipInfo(name), f"member {n}".encode())
    import gc

    def everything() -> set[Path]:
        found = set()
        for dirpath, dirnames, filenames in os.walk(tmp_path.parent):
            found.update(Path(dirpath) / n for n in dirnames + filenames)
        return found

    gc.collect()  # earlier examples' extractions go now, not during the walk
    before = everything()
    from viewer.dicom.sources import collect

    sources = collect([archive])
    extracted = [Path(d) for d in sources.temp_dirs]
    new = everything() - before
    assert all(any(p == d or d in p.parents or p in d.parents for d in extracted) for p in new), new
    files = [p for d in extracted for p in d.rglob("*") if p.is_file()]
    named = {e.path.split("!", 1)[1] for e in sources.errors if "!" in e.path}
    contents = sorted(p.read_bytes() for p in files)
    assert len(contents) == len(set(contents))  # no member written over another
    for n, name in enumerate(names):
        assert f"member {n}".encode() in contents or name in named or name.endswith("/"), (name, sources.errors)


def test_one_slice_with_infinite_spacing_does_not_decide_for_the_stack(tmp_path: Path) -> None:
    folder = next(c for c in cases("dicom") if c.name == "dicom-first-slice-spacing-infinite").build(tmp_path / "s")
    [stack] = scan([folder]).stacks
    assert stack.n_slices == 4 and stack.slices[0].pixel_spacing is None
    np.testing.assert_allclose(stack.spacing, [0.8, 0.8, 2.0])
    assert not any("assumed 1.0 mm" in w for w in stack.warnings)


def test_unreadable_folder_is_named(tmp_path: Path) -> None:
    from tests.hostile._dicom import good_series, unreadable_folder

    good_series(tmp_path / "series")
    locked = unreadable_folder(tmp_path / "locked")
    if locked is None:
        pytest.skip("no folder that cannot be listed here (root with CAP_SYS_ADMIN)")
    try:
        result = scan([tmp_path / "series", locked])  # given by name: a symlinked folder is not walked into
        assert [s.n_slices for s in result.stacks] == [4]
        [error] = result.errors
        assert error.path == str(locked) and "cannot read folder" in error.error
    finally:
        if not locked.is_symlink():
            locked.chmod(0o700)
