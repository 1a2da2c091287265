"""Hostile and broken PACS nodes (servers started here, on 127.0.0.1): a DIMSE SCP (pynetdicom) that floods
C-FIND and sends instances of other studies, with path-traversal UIDs or truncated pixels; a DICOMweb server
that answers garbage, ignores limits, demands a bearer token or breaks its multipart stream. Nothing hangs,
crashes or writes outside the store; every problem is named."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from tests.conftest import pydicom_test_file
from viewer.pacs import PacsError, Query, client_for, resolve
from viewer.pacs.nodes import make_node
from viewer.pacs.retrieve import retrieve
from viewer.pacs.store import InstanceRejected, LocalStore

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.1.1"
TOKEN = "hostile-test-token-0123456789"


def _instance(sop: str, *, study: str = STUDY, rows: int | None = None) -> Dataset:
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, SERIES, sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    if rows is not None:
        ds.Rows = rows
    return ds


GOOD = [f"{SERIES}.{i}" for i in (1, 2, 3)]
TRAVERSAL = "../../../../tmp/radscope-hostile"
SHORT = f"{SERIES}.90"
OTHER_STUDY = f"{SERIES}.91"


@pytest.fixture
def hostile_scp() -> Iterator[int]:
    """A DIMSE node answering 5000 study matches (some malformed), listing 6 instances and sending 6 over
    C-GET: 3 good, one with a traversal UID, one with truncated pixels, one of another study."""
    sent = [_instance(s) for s in GOOD] + [_instance(TRAVERSAL), _instance(SHORT, rows=4096),
                                          _instance(OTHER_STUDY, study="1.2.3.4")]

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        level = event.identifier.QueryRetrieveLevel
        if level == "STUDY":
            for i in range(5000):
                ds = Dataset()
                ds.QueryRetrieveLevel = "STUDY"
                ds.StudyInstanceUID = f"1.2.3.{i}" if i % 7 else "not a uid\\x"
                ds.PatientName = f"P^{i}"
                yield 0xFF00, ds
        elif level == "SERIES":
            ds = Dataset()
            ds.SeriesInstanceUID = SERIES
            ds.Modality = "CT"
            yield 0xFF00, ds
        else:
            for inst in sent:
                ds = Dataset()
                ds.SOPInstanceUID = inst.SOPInstanceUID
                ds.SOPClassUID = CTImageStorage
                yield 0xFF00, ds
        yield 0x0000, None

    def on_get(event: Any) -> Iterator[Any]:
        yield len(sent)
        for inst in sent:
            yield 0xFF00, inst

    ae = AE(ae_title="HOSTILE")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)])
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_c_find_flood_is_cut_and_malformed_matches_skipped(hostile_scp: int) -> None:
    client = client_for(resolve(f"dimse://HOSTILE@127.0.0.1:{hostile_scp}"))
    result = client.find(Query(limit=50))
    assert result.truncated and len(result.studies) == 50 - 8  # 8 of the first 50 carry an invalid UID
    assert len(result.warnings) == 8 and "without a valid Study Instance UID" in result.warnings[0]


def test_hostile_instances_are_refused_one_by_one(hostile_scp: int, tmp_path: Path) -> None:
    client = client_for(resolve(f"dimse://HOSTILE@127.0.0.1:{hostile_scp}"))
    store = LocalStore(tmp_path / "store")
    report = retrieve(client, STUDY, store=store)
    # the traversal UID is not even listed as expected (not a UID); the other two are missing, each named
    assert report.stored == 3 and set(report.missing) == {SHORT, OTHER_STUDY} and not report.complete
    text = "\n".join(report.errors)
    assert "invalid SOPInstanceUID" in text and f"instance {SHORT}" in text and "belongs to study 1.2.3.4" in text
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(Path("store") / STUDY / SERIES / f"{s}.dcm" for s in GOOD)
    assert not Path("/tmp/radscope-hostile.dcm").exists()


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/dicom+json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).seen.append(dict(self.headers))
        kind, _, rest = self.path.lstrip("/").partition("/")
        if kind == "bearer" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, b"{}")
        elif kind in ("bearer", "huge") and rest.startswith("dicom-web/studies?"):
            items = [{"0020000D": {"vr": "UI", "Value": [f"1.2.3.{i}"]}} for i in range(5000 if kind == "huge" else 1)]
            self._send(200, json.dumps(items).encode())
        elif kind == "garbage":
            self._send(200, b"<html>not json{")
        elif kind == "odd" and "/series" not in rest:
            self._send(200, json.dumps([42, {"0020000D": "x"}, {"0020000D": {"Value": []}},
                                        {"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}]).encode())
        elif kind == "broken" and "/instances?" in rest:
            self._send(200, json.dumps([{"0020000E": {"vr": "UI", "Value": [SERIES]},
                                         "00080018": {"vr": "UI", "Value": [s]}} for s in GOOD]).encode())
        elif kind == "broken":
            boundary = "b0undary"
            body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + b"\x00garbage" * 40
                    + f"\r\n--{boundary}--\r\n".encode())
            self._send(200, body, f'multipart/related; type="application/dicom"; boundary={boundary}')
        else:
            self._send(200, b"[]")


@pytest.fixture
def web_server() -> Iterator[str]:
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The same server over https with a self-signed certificate for 127.0.0.1 (Orthanc 1.10's own https
    crashes on this Debian build at the first handshake, so the TLS side is tested here)."""
    import ssl
    import subprocess

    from tests.support.servers import require_binary

    openssl = require_binary("openssl", "openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


def test_https_needs_a_trusted_certificate(tls_server: tuple[str, Path]) -> None:
    base, cert = tls_server
    url = f"{base}/bearer/dicom-web"
    trusted = make_node("tls", url=url, token=TOKEN, ca_bundle=str(cert))
    assert [s.study_uid for s in client_for(trusted).find(Query()).studies] == ["1.2.3.0"]
    with pytest.raises(PacsError, match="TLS certificate not trusted .*--ca-cert"):
        client_for(make_node("tls", url=url, token=TOKEN)).echo()
    insecure = make_node("tls", url=url, token=TOKEN, verify=False)
    assert client_for(insecure).echo() < 5 and "NOT verified" in insecure.describe()


def test_web_bearer_token_is_sent_and_never_shown(web_server: str) -> None:
    node = make_node("b", url=f"{web_server}/bearer/dicom-web", token=TOKEN)
    assert client_for(node).find(Query()).studies[0].study_uid == "1.2.3.0"
    assert _Handler.seen[0]["Authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(PacsError) as info:
        client_for(make_node("b", url=f"{web_server}/bearer/dicom-web", token="wrong")).echo()
    assert "401" in str(info.value) and "wrong" not in str(info.value) and TOKEN not in str(info.value)


def test_web_garbage_huge_and_odd_answers(web_server: str) -> None:
    with pytest.raises(PacsError, match="malformed response"):
        client_for(make_node("g", url=f"{web_server}/garbage/dicom-web")).find(Query())
    huge = client_for(make_node("h", url=f"{web_server}/huge/dicom-web")).find(Query(limit=30))
    assert len(huge.studies) == 30 and huge.truncated  # the server ignored limit=30: cut here
    odd = client_for(make_node("o", url=f"{web_server}/odd/dicom-web")).find(Query())
    assert [s.study_uid for s in odd.studies] == ["1.2.3"] and len(odd.warnings) == 3


def test_web_broken_multipart_is_a_per_instance_error(web_server: str, tmp_path: Path) -> None:
    client = client_for(make_node("x", url=f"{web_server}/broken/dicom-web"))
    report = retrieve(client, STUDY, SERIES, store=LocalStore(tmp_path))
    assert report.stored == 0 and report.missing == GOOD and report.errors
    assert any("fetching the rest one by one" in e for e in report.errors)
    assert list(tmp_path.rglob("*.dcm")) == []


def test_cli_get_names_what_is_missing(hostile_scp: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from viewer.cli import main as radscope

    rc = radscope(["pacs", "get", f"dimse://HOSTILE@127.0.0.1:{hostile_scp}", "--study", STUDY, "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 1 and out.strip() == str(tmp_path / STUDY)
    assert "missing 2 instance(s): " in err and SHORT in err and OTHER_STUDY in err
    assert "run the same command again to resume" in err and "belongs to study 1.2.3.4" in err


HOSTILE_UIDS = ["../x", "../../../../tmp/radscope-hostile", "/etc/radscope-hostile", "..", ".", "", "1.2/../../3",
                "1.2\\..\\3", "1." * 3000 + "1", "a" * 5000, "NUL\x00.dcm", "CON"]


def test_store_names_hostile_uids_inside_its_root(tmp_path: Path) -> None:
    """UIDs a PACS sends (in C-FIND answers or in the instances) name folders and files: valid UIDs as they are,
    anything else through the shared safe name (distinct per UID), never outside the root."""
    store = LocalStore(tmp_path / "store")
    root = store.root
    assert store.folder("1.2.3", "1.2.3.4") == root / "1.2.3" / "1.2.3.4"
    assert store.path_for("1.2.3", "1.2.3.4", "1.2.3.4.5") == root / "1.2.3" / "1.2.3.4" / "1.2.3.4.5.dcm"
    names = set()
    for uid in HOSTILE_UIDS:
        for path in (store.folder(uid), store.folder("1.2.3", uid), store.path_for(uid, uid, uid)):
            assert path.resolve().is_relative_to(root) and path.resolve() != root, (uid, path)
            assert all(0 < len(part) <= 100 + len(".dcm") for part in path.relative_to(root).parts), (uid, path)
        path = store.path_for(uid, "1.2", uid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")  # each can really be written
        names.add(path.relative_to(root))
    assert len(names) == len(HOSTILE_UIDS)  # two hostile UIDs never share a file
    assert not (tmp_path / "x").exists() and not Path("/etc/radscope-hostile").exists()
    assert store.present("1." * 3000 + "1") == set()  # the hashed files are not taken for UIDs


def test_store_refuses_a_folder_that_leads_outside(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "elsewhere").mkdir()
    (store.root / "1.2.3").symlink_to(tmp_path / "elsewhere")  # planted in the store by someone else
    with pytest.raises(InstanceRejected, match="outside"):
        store.path_for("1.2.3", "1.2.3.4", "1.2.3.4.5")
