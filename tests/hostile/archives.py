"""Hostile archives and DICOMDIRs: a good series plus members/records that try to escape, clash or explode.

Every "evil" file is a valid DICOM slice of another series, so loading it would show up as an extra stack
(``good`` counts the stacks that must load). Bad members are named ``archive.zip!member``.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pydicom

from tests.hostile import case
from tests.hostile._dicom import good_series

ZIP = "archive.zip"


def _zip(folder: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    """``archive.zip`` in ``folder`` holding a 4-slice good series plus ``members`` (written as given)."""
    good = good_series(folder / "_src")
    evil = good_series(folder / "_evil", n=1, prefix="evil")[0].read_bytes()
    with zipfile.ZipFile(folder / ZIP, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in good:
            zf.write(f, f"series/{f.name}")
        for name, data in members:
            zf.writestr(name, data or evil)
    for sub in ("_src", "_evil"):
        for f in (folder / sub).iterdir():
            f.unlink()
        (folder / sub).rmdir()
    return folder / ZIP


def _symlink_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


ZIP_CASES: dict[str, tuple[list[tuple[str | zipfile.ZipInfo, bytes]], tuple[str, ...], str]] = {
    # name: (members (b"" = an evil DICOM slice), member names that must be errors, words the error holds)
    "dotdot": ([("../evil.dcm", b""), ("series/../../evil2.dcm", b"")], ("../evil.dcm", "series/../../evil2.dcm"),
               "climbs"),
    "absolute": ([("/tmp/radscope-evil.dcm", b"")], ("/tmp/radscope-evil.dcm",), "absolute"),
    "duplicate": ([("dup/evil.dcm", b""), ("dup/evil.dcm", b"")], ("dup/evil.dcm",), "clashes"),
    "case": ([("dup/Evil.dcm", b""), ("dup/evil.dcm", b"")], ("dup/Evil.dcm", "dup/evil.dcm"), "clashes"),
    "normalise": ([("dup/./evil.dcm", b""), ("dup//evil.dcm", b"")], ("dup/./evil.dcm", "dup//evil.dcm"), "clashes"),
    "unicode": ([("dup/\u00e9.dcm", b""), ("dup/e\u0301.dcm", b"")], ("dup/\u00e9.dcm", "dup/e\u0301.dcm"), "clashes"),
    "file-folder": ([("clash", b""), ("clash/evil.dcm", b"")], ("clash",), "folder"),
    "symlink": ([(_symlink_member("link.dcm", "/etc/passwd"), b"/etc/passwd")], ("link.dcm",), "symbolic link"),
    "control-chars": ([("evil\x07.dcm", b"")], ("evil\x07.dcm",), "control"),
}


def _zip_case(name: str, members: list[tuple[str | zipfile.ZipInfo, bytes]], bad: tuple[str, ...], word: str) -> None:
    # the file/folder clash refuses the file "clash"; "clash/evil.dcm" is an ordinary member and loads
    @case(f"zip-{name}", "archive", mentions=(word, "not extracted"), good=2 if name == "file-folder" else 1,
          bad=tuple(f"{ZIP}!{b}" for b in bad))
    def build(folder: Path) -> Path:
        """A zip whose good members load while the hostile ones are per-member errors."""
        return _zip(folder, members)


for _name, (_members, _bad, _word) in ZIP_CASES.items():
    _zip_case(_name, _members, _bad, _word)


@case("zip-bomb-ratio", "archive", outcome="refused", mentions=("zip bomb",), good=0, bad=(ZIP,))
def zip_bomb(folder: Path) -> Path:
    """300 MiB of zeros in a few hundred KiB: refused from the declared sizes before anything is written."""
    with zipfile.ZipFile(folder / ZIP, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.dcm", "w") as out:
        block = bytes(1 << 20)
        for _ in range(300):
            out.write(block)
    return folder / ZIP


def _dicomdir(folder: Path, n_good: int = 3) -> tuple[Path, pydicom.Dataset, str]:
    """A DICOMDIR (pydicom's FileSet) over a good series and one more slice of another series (its SOP
    Instance UID is returned) whose record the case then redirects."""
    from pydicom.fileset import FileSet

    good = good_series(folder / "_src", n=n_good)
    evil = pydicom.dcmread(good_series(folder / "_evil", n=1, prefix="evil")[0])
    fs = FileSet()
    for f in good:
        fs.add(pydicom.dcmread(f))
    fs.add(evil)
    fs.write(folder / "media")
    for sub in ("_src", "_evil"):
        for f in (folder / sub).iterdir():
            f.unlink()
        (folder / sub).rmdir()
    return folder / "media" / "DICOMDIR", pydicom.dcmread(folder / "media" / "DICOMDIR"), evil.SOPInstanceUID


def _redirect(folder: Path, file_id: list[str], outside_link: bool = False) -> Path:
    """Move the other series' slice out of the media folder (to ``outside/EVIL``) and point its record at it
    with ``file_id`` (``OUTSIDE`` stands for the absolute path of ``outside``)."""
    dicomdir, ds, evil_uid = _dicomdir(folder)
    [record] = [r for r in ds.DirectoryRecordSequence if r.get("ReferencedSOPInstanceUIDInFile") == evil_uid]
    outside = folder / "outside"
    outside.mkdir()
    dicomdir.parent.joinpath(*record.ReferencedFileID).rename(outside / "EVIL")
    if outside_link:
        (dicomdir.parent / "LINK").symlink_to(outside, target_is_directory=True)
    record.ReferencedFileID = [str(outside) if part == "OUTSIDE" else part for part in file_id]
    ds.save_as(dicomdir)
    return dicomdir


DICOMDIR_CASES = {
    "dotdot": (["..", "..", "outside", "EVIL"], "climbs"),
    "absolute": (["OUTSIDE", "EVIL"], "absolute"),
    "slash": (["../../outside/EVIL"], "separator"),
    "symlink": (["LINK", "EVIL"], "symbolic link"),
}


def _dicomdir_case(name: str, file_id: list[str], word: str) -> None:
    @case(f"dicomdir-{name}", "archive", mentions=("record", "outside the DICOMDIR's folder", word), good=1,
          bad=("media/DICOMDIR",))
    def build(folder: Path) -> Path:
        """A DICOMDIR record whose file ID leaves the DICOMDIR's folder: that file is not loaded."""
        return _redirect(folder, file_id, outside_link=name == "symlink")


for _name, (_file_id, _word) in DICOMDIR_CASES.items():
    _dicomdir_case(_name, _file_id, _word)


@case("dicomdir-folder", "archive", mentions=("record", "a folder, not a file"), good=1, bad=("media/DICOMDIR",))
def dicomdir_folder(folder: Path) -> Path:
    """A DICOMDIR record that names a folder (a directory called like an image file)."""
    dicomdir, ds, evil_uid = _dicomdir(folder)
    [record] = [r for r in ds.DirectoryRecordSequence if r.get("ReferencedSOPInstanceUIDInFile") == evil_uid]
    target = dicomdir.parent.joinpath(*record.ReferencedFileID)
    target.unlink()
    target.mkdir()
    return dicomdir


@case("zip-bad-crc", "archive", mentions=("cannot extract member", "CRC"), good=1, bad=(f"{ZIP}!dup/evil.dcm",))
def zip_bad_crc(folder: Path) -> Path:
    """A stored member whose bytes were damaged after zipping: its CRC check fails while it is extracted."""
    archive = _zip(folder, [])
    evil = good_series(folder / "_evil", n=1, prefix="evil")[0]
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_STORED) as zf:
        zf.write(evil, "dup/evil.dcm")
        info = zf.getinfo("dup/evil.dcm")
    evil.unlink()
    (folder / "_evil").rmdir()
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 200:start + 208] = b"DAMAGED!"
    archive.write_bytes(bytes(data))
    return archive
