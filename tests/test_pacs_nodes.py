"""PACS nodes, settings file, query checks and the local store's defences (no server needed)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pydicom
import pytest

from tests.conftest import pydicom_test_file
from viewer.pacs.client import InstanceRef
from viewer.pacs.errors import NodeSpecError, PacsError
from viewer.pacs.nodes import DimseNode, NodeBook, WebNode, make_node, parse_inline, resolve
from viewer.pacs.query import Query, date_range
from viewer.pacs.retrieve import plan
from viewer.pacs.store import Expect, InstanceRejected, LocalStore, uid_component

SECRET = "pa55-w0rd-that-must-never-show"
TOKEN = "tok-abcdef-0123456789-never-show"


def test_inline_dimse_spec() -> None:
    node = parse_inline("dimse://ORTHANC@127.0.0.1:4242?our_aet=ME&retrieve=move&move_port=11200")
    assert isinstance(node, DimseNode)
    assert (node.ae_title, node.host, node.port, node.our_aet, node.retrieve, node.move_port) == (
        "ORTHANC", "127.0.0.1", 4242, "ME", "move", 11200)
    assert parse_inline("dimse://PACS@[::1]:104").host == "::1"


@pytest.mark.parametrize("spec, reason", [
    ("dimse://ORTHANC@host", "AET@host:port"),
    ("dimse://@host:104", "AET@host:port"),
    ("dimse://WAY_TOO_LONG_AE_TITLE_X@h:104", "1-16"),
    ("dimse://A\\B@h:104", "backslash"),
    ("dimse://PACS@h:70000", "1-65535"),
    ("dimse://PACS@h:104?retrieve=push", "'get' or 'move'"),
    ("dimse://PACS@h:104?evil=1", "unknown option"),
    ("ftp://host/x", "not a node spec"),
    ("https:///dicom-web", "invalid DICOMweb URL"),
])
def test_bad_inline_specs_say_why(spec: str, reason: str) -> None:
    with pytest.raises(NodeSpecError, match=None) as info:
        parse_inline(spec)
    assert reason in str(info.value)


def test_web_credentials_never_in_describe_or_repr() -> None:
    node = parse_inline(f"https://alice:{SECRET}@pacs.example.org/dicom-web/")
    assert isinstance(node, WebNode)
    assert node.url == "https://pacs.example.org/dicom-web" and node.username == "alice" and node.password == SECRET
    for shown in (node.describe(), repr(node), str(node), node.name):
        assert SECRET not in shown
    tok = make_node("t", url="https://h/dicom-web", token=TOKEN)
    assert TOKEN not in repr(tok) and TOKEN not in tok.describe() and "bearer" in tok.describe()
    with pytest.raises(NodeSpecError, match="not both"):
        make_node("x", url="https://h/dw", username="a", password="b", token="c")
    with pytest.raises(NodeSpecError, match="both a user name and a password"):
        make_node("x", url="https://h/dw", username="a")


def test_node_book_file_is_private_and_round_trips(radscope_home: Path) -> None:
    book = NodeBook()
    book.add(make_node("web", url="https://pacs.example.org/dicom-web", username="alice", password=SECRET))
    book.add(make_node("dimse", dimse="PACS@10.0.0.5:104", our_aet="WS1", retrieve="move"))
    assert book.path == radscope_home / "pacs-nodes.json"
    assert stat.S_IMODE(os.stat(book.path).st_mode) == 0o600
    nodes = book.nodes()
    assert nodes["web"].password == SECRET  # type: ignore[union-attr]
    assert resolve("dimse") == DimseNode("dimse", "PACS", "10.0.0.5", 104, "WS1", "move")
    with pytest.raises(NodeSpecError, match="exists already"):
        book.add(make_node("dimse", dimse="X@h:1"))
    book.add(make_node("dimse", dimse="X@h:1"), replace=True)
    assert stat.S_IMODE(os.stat(book.path).st_mode) == 0o600
    assert book.remove("dimse") and not book.remove("dimse")
    assert set(book.nodes()) == {"web"}
    with pytest.raises(NodeSpecError, match="unknown PACS node 'nope'"):
        resolve("nope")
    with pytest.raises(NodeSpecError, match="invalid node name"):
        book.add(make_node("../evil", dimse="X@h:1"))


def test_node_book_bad_file_names_it(radscope_home: Path) -> None:
    (radscope_home / "pacs-nodes.json").write_text("{not json")
    with pytest.raises(NodeSpecError, match="pacs-nodes.json: not valid JSON"):
        NodeBook().nodes()
    (radscope_home / "pacs-nodes.json").write_text(json.dumps({"format": "radscope-pacs-nodes/1",
                                                               "nodes": {"a": {"kind": "dimse", "port": "x"}}}))
    with pytest.raises(NodeSpecError, match="invalid"):
        NodeBook().nodes()


@pytest.mark.parametrize("text, value", [
    ("20240131", "20240131"), ("20240101-20241231", "20240101-20241231"), ("-20240101", "-20240101"),
    ("20240101-", "20240101-"), ("2024-01-31", "20240131"), ("2024-01-01 - 2024-02-01", "20240101-20240201"),
    (None, None), ("", None),
])
def test_date_ranges(text: str | None, value: str | None) -> None:
    assert date_range(text) == value


@pytest.mark.parametrize("text", ["2024", "20241301", "20240230x", "20240201-20240101", "a-b", "2024-01-01-2024"])
def test_bad_date_ranges(text: str) -> None:
    with pytest.raises(PacsError, match="invalid study date"):
        date_range(text)


def test_query_refuses_injection() -> None:
    with pytest.raises(PacsError, match="backslash"):
        Query(patient_id="A\\B")
    with pytest.raises(PacsError, match="DICOM UID"):
        Query(study_uid="1.2.3/../../etc")


def test_uid_components_never_escape(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    assert uid_component("1.2.3") == "1.2.3"
    hostiles = ("../../etc", "/abs/path", "..", "a\x00b", "1.2.3/../4", "C:\\x", "." * 70)
    assert len({uid_component(h) for h in hostiles}) == len(hostiles)  # never two in one folder
    for hostile in hostiles:
        comp = uid_component(hostile)
        assert "/" not in comp and "\\" not in comp and "\x00" not in comp and not comp.startswith(".")
        path = store.path_for(hostile, hostile, hostile)
        assert store.root in path.parents


def _write(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def test_store_validates_each_instance(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    src = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    study, series, sop = str(src.StudyInstanceUID), str(src.SeriesInstanceUID), str(src.SOPInstanceUID)
    data = pydicom_test_file("CT_small.dcm").read_bytes()
    stored = store.accept_bytes(data, Expect(study, series), sop)
    assert stored.new and stored.path == store.root / study / series / f"{sop}.dcm"
    assert store.present(study) == {sop} == store.present(study, series)
    again = store.accept_bytes(data, Expect(study), sop)
    assert not again.new
    with pytest.raises(InstanceRejected, match="belongs to study"):
        store.accept_bytes(data, Expect("1.2.3"), sop)
    with pytest.raises(InstanceRejected, match="announced as 9.9"):
        store.accept_bytes(data, Expect(study), "9.9")
    with pytest.raises(InstanceRejected, match="not DICOM"):
        store.accept_bytes(b"<html>hello</html>" * 20, Expect(study), None)
    hostile = src.copy()
    hostile.SOPInstanceUID = "../../../../tmp/evil"
    with pytest.raises(InstanceRejected, match="invalid SOPInstanceUID"):
        store.accept_file(_write(hostile, store.incoming_file()), Expect(study), None)
    short = src.copy()
    short.SOPInstanceUID = "1.2.3.4"
    short.Rows = 4096  # pixel data far too short for the claimed size
    with pytest.raises(InstanceRejected, match="instance 1.2.3.4"):
        store.accept_file(_write(short, store.incoming_file()), Expect(study), None)
    assert store.present(study) == {sop}
    assert list((store.root / ".incoming").iterdir()) == []  # rejected temporaries are removed


def test_plan_asks_whole_series_or_the_missing_instances() -> None:
    refs = [InstanceRef("1.1", "1.1.1"), InstanceRef("1.1", "1.1.2"), InstanceRef("1.2", "1.2.1")]
    assert plan(refs, set(), whole_study=True) is None
    assert plan(refs, set(), whole_study=False) == {"1.1": None, "1.2": None}
    assert plan(refs, {"1.1.1"}, whole_study=True) == {"1.1": ["1.1.2"], "1.2": None}
    assert plan(refs, {"1.1.1", "1.2.1"}, whole_study=True) == {"1.1": ["1.1.2"]}


def test_store_sweeps_old_temporaries_only(tmp_path: Path) -> None:
    incoming = tmp_path / ".incoming"
    incoming.mkdir()
    old, fresh = incoming / "old.part", incoming / "fresh.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1, 1))  # left by a process killed long ago
    LocalStore(tmp_path)
    assert not old.exists() and fresh.exists()


def test_cli_add_list_remove(radscope_home: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    from viewer.cli import main as radscope

    monkeypatch.delenv("RADSCOPE_PACS_PASSWORD", raising=False)
    assert radscope(["pacs", "add", "main", "--dimse", "PACS@10.1.2.3:104", "--our-aet", "WS1", "--retrieve", "move",
                     "--move-port", "11200"]) == 0
    assert "saved main (dimse://PACS@10.1.2.3:104) as WS1, C-MOVE" in capsys.readouterr().out
    assert radscope(["pacs", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == [{"kind": "dimse", "name": "main", "ae_title": "PACS", "host": "10.1.2.3", "port": 104,
                    "our_aet": "WS1", "retrieve": "move", "move_port": 11200}]
    assert radscope(["pacs", "add", "main", "--dimse", "X@h:1"]) == 2
    assert "exists already" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--user needs a password"):
        radscope(["pacs", "add", "web", "--url", "https://h/dicom-web", "--user", "alice"])
    assert radscope(["pacs", "echo", "nowhere"]) == 2
    assert "unknown PACS node 'nowhere'" in capsys.readouterr().err
    assert radscope(["pacs", "remove", "main"]) == 0 and radscope(["pacs", "remove", "main"]) == 2
    assert radscope(["pacs", "list"]) == 0
    assert "no PACS nodes saved" in capsys.readouterr().out
