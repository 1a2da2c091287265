"""``radscope review``: flag (slice order, errors), list, edit, delete, history, summary, export, import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.test_review_support import make_ct_series
from viewer.cli import main
from viewer.review import ReviewStore
from viewer.review.source import SourceError, context_at


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["review", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_context_at_uses_slice_order_along_the_normal(tmp_path: Path) -> None:
    series = make_ct_series(tmp_path / "ct", 4)  # instance numbers and file names run against it
    for k in range(4):
        ctx = context_at(tmp_path / "ct", k)
        assert ctx.sop_instance_uids == (series[k].SOPInstanceUID,) and ctx.slice_index == k
        assert ctx.geometry is not None and ctx.geometry.position[2] == pytest.approx(
            float(series[k].ImagePositionPatient[2]))
    with pytest.raises(SourceError, match=r"slice 4 is out of range: series .* has slices 0..3"):
        context_at(tmp_path / "ct", 4)


def test_context_at_needs_series_when_there_are_several(tmp_path: Path) -> None:
    a = make_ct_series(tmp_path / "both" / "a", 2)
    b = make_ct_series(tmp_path / "both" / "b", 3)
    with pytest.raises(SourceError, match="holds 2 series; pick one with --series"):
        context_at(tmp_path / "both", 0)
    assert context_at(tmp_path / "both", 2, b[0].SeriesInstanceUID).sop_instance_uids == (b[2].SOPInstanceUID,)
    with pytest.raises(SourceError, match="no series 1.2.3"):
        context_at(tmp_path / "both", 0, "1.2.3")
    assert a


def test_flag_list_edit_delete_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = make_ct_series(tmp_path / "ct", 3)
    pkg = tmp_path / "model"
    pkg.mkdir()
    (pkg / "radscope-model.json").write_text(json.dumps(
        {"name": "demo", "version": "2.1", "weights": {"file": "m.pt2", "sha256": "ff" * 32}}))
    code, out, err = _run(capsys, "flag", str(tmp_path / "ct"), "--slice", "1", "--label", "nodule",
                          "--verdict", "false-positive", "--reviewer", "ann", "--model", str(pkg),
                          "--method", "gradcam", "--threshold", "0.4", "--region", "ellipse:10,10;20,30",
                          "--comment", "vessel")
    assert code == 0, err
    flag_id = out.strip()
    with ReviewStore() as store:  # the default store under RADSCOPE_HOME
        flag = store.get_flag(flag_id)
    assert flag.sop_instance_uids == (series[1].SOPInstanceUID,)
    assert (flag.model.name, flag.model.version, flag.model.sha256) == ("demo", "2.1", "ff" * 32)
    assert flag.threshold == 0.4 and flag.region is not None and flag.region.kind == "ellipse"
    assert len(flag.region.points_lps) == 2

    code, out, _ = _run(capsys, "list", "--json")
    assert [f["id"] for f in json.loads(out)["flags"]] == [flag_id]
    assert _run(capsys, "edit", flag_id, "--verdict", "mislocalised", "--reviewer", "bob")[0] == 0
    assert _run(capsys, "delete", flag_id)[0] == 0
    assert _run(capsys, "list")[1] == ""
    assert flag_id in _run(capsys, "list", "--all")[1]
    code, out, _ = _run(capsys, "history", flag_id)
    assert [line.split()[1] for line in out.splitlines()] == ["create", "edit", "delete"]
    assert "by bob" in out.splitlines()[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--verdict", "wrong"], "allowed: correct, false_positive, false_negative, mislocalised, uncertain"),
        (["--slice", "7"], "slice 7 is out of range"),
        (["--slice", "-1"], "slice -1 is out of range"),
        (["--region", "blob:1,2"], "unknown region kind 'blob'"),
        (["--region", "rectangle:1,2;900,3"], "outside the 128x128 image"),
    ],
)
def test_flag_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    make_ct_series(tmp_path / "ct", 2)
    base = {"--slice": "0", "--label": "nodule", "--verdict": "correct"}
    for key, value in zip(argv[::2], argv[1::2]):
        base[key] = value
    code, out, err = _run(capsys, "flag", str(tmp_path / "ct"), *[x for kv in base.items() for x in kv])
    assert code == 2 and out == "" and message in err
    with ReviewStore() as store:
        assert store.flags(include_deleted=True) == []


def test_unreadable_path_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("not dicom")
    code, _, err = _run(capsys, "flag", str(tmp_path / "junk"), "--slice", "0", "--label", "x", "--verdict", "fp")
    assert code == 2 and f"{tmp_path / 'junk'}: no readable DICOM images" in err
    code, _, err = _run(capsys, "flag", str(tmp_path / "missing"), "--slice", "0", "--label", "x", "--verdict", "fp")
    assert code == 2 and "missing: no such file or folder" in err


def test_export_import_round_trip_and_dicom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = make_ct_series(tmp_path / "ct", 2)
    store_a, store_b = str(tmp_path / "a.sqlite3"), str(tmp_path / "b.sqlite3")
    for k, verdict in enumerate(["correct", "missed"]):
        assert _run(capsys, "--store", store_a, "flag", str(tmp_path / "ct"), "--slice", str(k),
                    "--label", "nodule", "--verdict", verdict)[0] == 0
    assert _run(capsys, "--store", store_a, "export", "--format", "json", "--out", str(tmp_path / "x.json"))[0] == 0
    assert _run(capsys, "--store", store_b, "import", str(tmp_path / "x.json"))[1].strip() == "added 2, updated 0, unchanged 0"
    assert _run(capsys, "--store", store_b, "import", str(tmp_path / "x.json"))[1].strip() == "added 0, updated 0, unchanged 2"
    assert _run(capsys, "--store", store_b, "export", "--format", "csv", "--out", str(tmp_path / "x.csv"))[0] == 0
    assert len((tmp_path / "x.csv").read_text().splitlines()) == 3
    code, out, _ = _run(capsys, "--store", store_b, "export", "--format", "dicom", "--out", str(tmp_path / "dcm"))
    assert code == 0
    kinds = sorted(line.split()[0] for line in out.splitlines())
    assert kinds == ["KO", "KO", "SR"]
    referenced = set()
    for line in out.splitlines():
        ds = pydicom.dcmread(line.split(maxsplit=1)[1])
        referenced |= {str(e.value) for e in ds.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
    assert referenced == {ds.SOPInstanceUID for ds in series}
    code, out, _ = _run(capsys, "--store", store_b, "summary", "--json")
    assert json.loads(out)["overall"]["counts"]["false_negative"] == 1
    code, _, err = _run(capsys, "--store", store_b, "import", str(tmp_path / "x.csv"))
    assert code == 2 and "x.csv" in err


def test_flag_prints_id_from_a_real_process(tmp_path: Path, radscope_home: Path) -> None:
    make_ct_series(tmp_path / "ct", 2)
    result = subprocess.run(
        [sys.executable, "-m", "viewer.cli", "review", "flag", str(tmp_path / "ct"), "--slice", "1",
         "--label", "nodule", "--verdict", "uncertain"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr
    with ReviewStore(radscope_home / "review" / "review.sqlite3") as store:
        assert [f.id for f in store.flags()] == [result.stdout.strip()]


def test_worklist_from_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_ct_series(tmp_path / "inbox" / "a", 2)
    b = make_ct_series(tmp_path / "inbox" / "b", 1)
    code, out, err = _run(capsys, "worklist", "--add", str(tmp_path / "inbox"))
    assert code == 0 and "0/2 studies done" in err
    lines = out.splitlines()
    assert len(lines) == 2 and all("not started" in ln for ln in lines)
    by_uid = {uid: ln for ln in lines for uid in (a[0].StudyInstanceUID, b[0].StudyInstanceUID) if uid in ln}
    assert str(tmp_path / "inbox" / "a") in by_uid[a[0].StudyInstanceUID]
    assert "20040119 CT" in by_uid[b[0].StudyInstanceUID] and "CompressedSamples" not in out
    code, out, err = _run(capsys, "worklist", "--add", str(tmp_path / "inbox"), "--status", b[0].StudyInstanceUID, "done")
    assert code == 0 and len(out.splitlines()) == 2 and "1/2 studies done" in err
    code, _, err = _run(capsys, "worklist", "--status", b[0].StudyInstanceUID, "finished")
    assert code == 2 and "allowed: not_started, in_progress, done" in err
    with ReviewStore() as store:
        assert store.study_header(a[0].StudyInstanceUID).patient_id == "1CT1"


def test_store_option_before_or_after_the_action(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_ct_series(tmp_path / "ct", 1)
    store = str(tmp_path / "elsewhere.sqlite3")
    code, out, _ = _run(capsys, "flag", str(tmp_path / "ct"), "--slice", "0", "--label", "x", "--verdict", "tp",
                        "--store", store)
    assert code == 0
    assert _run(capsys, "--store", store, "list")[1].startswith(out.strip())
    assert _run(capsys, "list")[1] == ""  # the default store was not touched


def test_flag_with_an_installed_model_name_records_its_version_and_sha256(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from inference.package import read_card
    from viewer import paths

    make_ct_series(tmp_path / "ct", 2)
    card = read_card(paths.resources_dir() / "models" / "chest-nodule-demo")
    ids = []
    for spec in ("chest-nodule-demo", f"chest-nodule-demo@{card.version}", "other-model@3.0"):
        code, out, err = _run(capsys, "flag", str(tmp_path / "ct"), "--slice", "0", "--label", "nodule",
                              "--verdict", "correct", "--model", spec)
        assert code == 0, err
        ids.append(out.strip())
    with ReviewStore() as store:
        got = [store.get_flag(i).model for i in ids]
    assert (got[0].name, got[0].version, got[0].sha256) == (card.name, card.version, card.weights.sha256)
    assert got[1] == got[0]
    assert (got[2].name, got[2].version, got[2].sha256) == ("other-model", "3.0", "")  # not installed here
