"""A package's OOD statistics (inference/ood.py) are hostile input like the rest of it: the .npz is size-checked
before it is read, every array header is checked before anything is allocated (inference/npysafe.py, as the
results cache does), non-finite values are refused, and the card ``add_to_card`` edits is read with jsonsafe's
bounds. Each error names the package's card and the file."""

from __future__ import annotations

import hashlib
import io
import json
import resource
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inference.ood import MAX_STATS_BYTES, add_to_card, read_stats, write_stats
from inference.package import ModelPackageError, read_card
from tests.hostile.models import good_pt2, write_package

FIELDS = {"layer": "features", "pooling": "mean", "threshold": 5.0}


def _package(tmp_path: Path) -> Path:
    return write_package(tmp_path / "pkg", good_pt2())


def _with_stats(tmp_path: Path, data: bytes) -> Path:
    """A package whose ood.npz is ``data`` and whose card names it with the matching sha256 (the attacker
    writes the card)."""
    pkg = _package(tmp_path)
    (pkg / "ood.npz").write_bytes(data)
    add_to_card(pkg, {"file": "ood.npz", "sha256": hashlib.sha256(data).hexdigest(), **FIELDS})
    return pkg


def _npz(arrays: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in arrays.items():
            zf.writestr(f"{name}.npy", body)
    return out.getvalue()


def _npy(array: np.ndarray | None = None, header: dict[str, object] | None = None, body: bytes = b"") -> bytes:
    out = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(out, array, allow_pickle=array.dtype == object)
    else:
        np.lib.format.write_array_header_1_0(out, header)
        out.write(body)
    return out.getvalue()


def test_written_statistics_read_back(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    mean, precision = np.arange(4, dtype=np.float64), np.eye(4)
    name, sha = write_stats(pkg, mean, precision)
    add_to_card(pkg, {"file": name, "sha256": sha, **FIELDS})
    stats = read_stats(read_card(pkg))
    assert stats is not None and stats.threshold == 5.0
    np.testing.assert_array_equal(stats.mean, mean)
    np.testing.assert_array_equal(stats.precision, precision)


def _refused(pkg: Path, *words: str) -> str:
    with pytest.raises(ModelPackageError) as info:
        read_stats(read_card(pkg))
    message = str(info.value)
    assert "radscope-model.json" in message, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    return message


def test_a_header_claiming_a_terabyte_is_refused_without_allocating(tmp_path: Path) -> None:
    huge = _npy(header={"descr": "<f8", "fortran_order": False, "shape": (400_000, 400_000)}, body=bytes(64))
    pkg = _with_stats(tmp_path, _npz({"mean": _npy(np.zeros(400_000)), "precision": huge}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _refused(pkg, "ood.npz", "header claims")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: nothing of 1.2 TB


@pytest.mark.parametrize(("arrays", "words"), [
    ({"mean": np.zeros(3), "precision": np.eye(4)}, ("must be (F,) and (F, F)",)),
    ({"mean": np.zeros(3, np.float32), "precision": np.eye(3, dtype=np.float32)}, ("float32",)),
    ({"mean": np.array([1.0, np.nan, 0.0]), "precision": np.eye(3)}, ("finite",)),
    ({"mean": np.zeros(3), "precision": np.full((3, 3), np.inf)}, ("finite",)),
    ({"mean": np.zeros(9000), "precision": np.zeros((9000, 1))}, ("at most 8192",)),
    ({"precision": np.eye(3)}, ("mean",)),
], ids=["shapes-differ", "float32", "nan-mean", "infinite-precision", "too-many-features", "no-mean"])
def test_bad_arrays_are_refused_by_name(tmp_path: Path, arrays: dict[str, np.ndarray], words: tuple[str, ...]) -> None:
    pkg = _with_stats(tmp_path, _npz({k: _npy(v) for k, v in arrays.items()}))
    _refused(pkg, "ood.npz", *words)


def test_a_pickled_array_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    from tests.hostile.models import MARKER, evil_pickle

    obj = np.empty(1, dtype=object)
    obj[0] = "x"
    header = _npy(obj)  # an object array: numpy with allow_pickle=True would unpickle its body
    body = header[: header.index(b"\n") + 1] + evil_pickle(tmp_path / "x")
    pkg = _with_stats(tmp_path, _npz({"mean": body, "precision": _npy(np.eye(1))}))
    _refused(pkg, "ood.npz", "object")
    assert not (tmp_path / MARKER).exists()


def test_not_a_zip_and_a_device_and_a_huge_file_are_refused(tmp_path: Path) -> None:
    _refused(_with_stats(tmp_path / "a", b"not a zip at all"), "ood.npz", "not a statistics .npz")
    pkg = _with_stats(tmp_path / "b", b"x")
    (pkg / "ood.npz").unlink()
    (pkg / "ood.npz").symlink_to("/dev/zero")  # read whole it would never end
    _refused(pkg, "ood.npz", "not a regular file")
    pkg = _with_stats(tmp_path / "c", b"x")
    with open(pkg / "ood.npz", "r+b") as fh:  # sparse: reading it would take 512 MiB for nothing
        fh.truncate(MAX_STATS_BYTES + 1)
    _refused(pkg, "ood.npz", "larger than")


@pytest.mark.parametrize(("text", "words"), [
    ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", ("nested",)),
    ('{"name": NaN}', ("not valid json",)),
    ("[1, 2]", ("not a json object",)),
], ids=["nested-5000", "nan", "not-an-object"])
def test_add_to_card_reads_the_card_within_bounds(tmp_path: Path, text: str, words: tuple[str, ...]) -> None:
    pkg = _package(tmp_path)
    card = pkg / "radscope-model.json"
    card.write_text(text)
    with pytest.raises(ModelPackageError) as info:
        add_to_card(pkg, {"file": "ood.npz", "sha256": "ab" * 32, **FIELDS})
    assert str(card) in str(info.value)
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))
    assert card.read_text() == text  # unchanged


def test_add_to_card_refuses_a_huge_card_unread(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    with open(pkg / "radscope-model.json", "r+b") as fh:
        fh.truncate(3 * 2**30)
    with pytest.raises(ModelPackageError, match="larger than"):
        add_to_card(pkg, {"file": "ood.npz", "sha256": "ab" * 32, **FIELDS})


def test_the_card_keeps_its_other_fields(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    before = json.loads((pkg / "radscope-model.json").read_text())
    add_to_card(pkg, {"file": "ood.npz", "sha256": "ab" * 32, **FIELDS})
    after = json.loads((pkg / "radscope-model.json").read_text())
    assert after == {**before, "ood": {"file": "ood.npz", "sha256": "ab" * 32, **FIELDS}}
