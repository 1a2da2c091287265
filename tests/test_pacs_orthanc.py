"""DIMSE and DICOMweb against a real Orthanc (started in a private network namespace by the fixture):
echo, find with filters, retrieval by C-GET, C-MOVE and WADO-RS that reads exactly like the original,
resume, send back (C-STORE, STOW-RS), pushes to our storage SCP, bad nodes, hostile instances, secrets."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from phantom import ChestParams, make_chest_ct
from tests.support.pacs_data import Studies, studies  # noqa: F401  (fixture)
from tests.support.orthanc import (  # noqa: F401  (fixtures)
    PASSWORD,
    RADSCOPE_AET,
    RADSCOPE_MOVE_PORT,
    USER,
    Orthanc,
    orthanc,
    pacs_net,
)
from viewer.cli import main as radscope
from viewer.dicom import load_volume, scan, synthetic
from viewer.pacs import PacsError, Query, client_for, resolve
from viewer.pacs.listener import StorageSCP
from viewer.pacs.nodes import make_node
from viewer.pacs.retrieve import retrieve
from viewer.pacs.store import Expect, LocalStore, RetrieveReport, Sink

pytestmark = pytest.mark.slow


def dimse(orthanc: Orthanc, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return orthanc.dimse_spec + (f"?{query}" if query else "")


def web_node(orthanc: Orthanc, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return make_node("orthanc-web", url=orthanc.dicomweb_url, username=USER, password=password)


NODES = ["get", "move", "web"]


def node_for(kind: str, orthanc: Orthanc):  # type: ignore[no-untyped-def]
    if kind == "web":
        return web_node(orthanc)
    return resolve(dimse(orthanc, retrieve=kind, move_port=str(RADSCOPE_MOVE_PORT), our_aet=RADSCOPE_AET))


@pytest.fixture(autouse=True)
def _listen_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("viewer.pacs.dimse.DEFAULT_LISTEN_HOST", "127.0.0.1")


def test_orthanc_listens_only_inside_its_namespace(orthanc: Orthanc) -> None:
    inside = orthanc.listening()
    assert ":4242" in inside and ":8042" in inside and "Orthanc" in inside
    host = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, timeout=10).stdout
    assert "Orthanc" not in host  # nothing of it in this machine's own network namespace
    with pytest.raises(OSError):  # and its port is closed there
        socket.create_connection(("127.0.0.1", orthanc.dicom_port), timeout=2).close()


@pytest.mark.parametrize("kind", ["get", "web"])
def test_echo(pacs_net: Orthanc, kind: str) -> None:
    assert client_for(node_for(kind, pacs_net)).echo() < 5


@pytest.mark.parametrize("kind", ["get", "web"])
def test_find_with_filters(pacs_net: Orthanc, studies: Studies, kind: str) -> None:
    client = client_for(node_for(kind, pacs_net))

    def uids(**filters: str) -> set[str]:
        return {s.study_uid for s in client.find(Query(**filters)).studies}

    ours = {studies.axial_study, studies.oblique_study}
    assert ours | {studies.mr_study} <= uids()
    assert uids(patient_id="P-DOE") == {studies.axial_study}
    assert uids(patient_name="SMITH*") == {studies.oblique_study}
    assert uids(study_date="20250101-20251231") & ours == {studies.oblique_study}
    assert uids(study_date="-20240201") & ours == {studies.axial_study}
    assert uids(accession="ACC-DOE") == {studies.axial_study}
    assert uids(modality="MR") & (ours | {studies.mr_study}) == {studies.mr_study}
    assert uids(description="CHEST OBLIQUE") == {studies.oblique_study}
    assert uids(patient_id="NOBODY") == set()
    found = client.find(Query(patient_id="P-SMITH")).studies[0]
    assert (found.patient_name, found.study_date, found.accession, found.modalities) == (
        "SMITH^JOHN", "20250310", "ACC-SMITH", ["CT"])
    assert [(s.series_uid, s.modality, s.instances) for s in found.series] == [(studies.oblique_series, "CT", 24)]


@pytest.mark.parametrize("kind", ["get", "web"])
def test_find_is_capped(pacs_net: Orthanc, studies: Studies, kind: str) -> None:
    result = client_for(node_for(kind, pacs_net)).find(Query(limit=2))
    assert len(result.studies) == 2 and result.truncated


def _volume(folder: Path):  # type: ignore[no-untyped-def]
    result = scan([folder])
    assert not result.errors and len(result.stacks) == 1
    return load_volume(result.stacks[0])


@pytest.mark.parametrize("kind", NODES)
def test_retrieved_series_reads_like_the_original(pacs_net: Orthanc, studies: Studies, kind: str,
                                                  tmp_path: Path) -> None:
    client = client_for(node_for(kind, pacs_net))
    seen: list[int] = []
    report = retrieve(client, studies.oblique_study, studies.oblique_series, store=LocalStore(tmp_path),
                      progress=lambda stored, done, expected: seen.append(done))
    assert report.complete, report.errors
    assert (report.expected, report.stored, report.already) == (24, 24, 0)
    assert report.folder == tmp_path / studies.oblique_study / studies.oblique_series
    assert sorted(seen) == list(range(1, 25))
    got, original = _volume(report.folder), _volume(studies.oblique)
    assert got.array.shape == original.array.shape == (24, 64, 64)
    np.testing.assert_array_equal(got.array, original.array)
    np.testing.assert_allclose(got.origin, original.origin, atol=1e-6)
    np.testing.assert_allclose(got.spacing, original.spacing, atol=1e-6)
    np.testing.assert_allclose(got.direction, original.direction, atol=1e-9)


@pytest.mark.parametrize("kind", NODES)
def test_partial_retrieval_resumes(pacs_net: Orthanc, studies: Studies, kind: str, tmp_path: Path) -> None:
    client = client_for(node_for(kind, pacs_net))
    store = LocalStore(tmp_path)
    first = retrieve(client, studies.axial_study, store=store)
    assert first.complete and first.stored == 24
    files = sorted(first.folder.rglob("*.dcm"))
    removed = {f.stem for f in files[3:10]}
    kept_mtime = files[0].stat().st_mtime_ns
    for f in files[3:10]:
        f.unlink()
    second = retrieve(client, studies.axial_study, store=store)
    assert second.complete and (second.already, second.stored) == (17, 7)
    assert store.present(studies.axial_study) >= removed
    assert files[0].stat().st_mtime_ns == kept_mtime  # instances already there were not fetched again
    third = retrieve(client, studies.axial_study, store=store)
    assert (third.already, third.stored) == (24, 0)


def test_cli_get_prints_folder_and_files_stay_inside(pacs_net: Orthanc, studies: Studies, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str], radscope_home: Path) -> None:
    rc = radscope(["pacs", "get", dimse(pacs_net), "--study", studies.axial_study, "--quiet"])
    out = capsys.readouterr().out.strip()
    assert rc == 0
    assert Path(out) == radscope_home / "pacs" / studies.axial_study
    assert len(list(Path(out).rglob("*.dcm"))) == 24
    rc = radscope(["pacs", "get", dimse(pacs_net), "--study", studies.axial_study, "--series",
                   studies.axial_series, "--out", str(tmp_path), "--quiet"])
    assert rc == 0 and Path(capsys.readouterr().out.strip()) == tmp_path / studies.axial_study / studies.axial_series
    rc = radscope(["pacs", "get", dimse(pacs_net), "--study", "../../etc", "--quiet"])
    assert rc == 2 and "invalid study UID" in capsys.readouterr().err


def test_unknown_study_is_a_clear_error(pacs_net: Orthanc, studies: Studies) -> None:
    with pytest.raises(PacsError, match="study 1.2.3.4.5 not found"):
        retrieve(client_for(resolve(dimse(pacs_net))), "1.2.3.4.5")


def _new_series(root: Path, name: str, patient_id: str) -> Path:
    ph = make_chest_ct(ChestParams(n_slices=6, matrix=(32, 32), n_nodules=0), seed=5)
    seed = int.from_bytes(name.encode()[:6].ljust(6, b"-"), "big")  # distinct UIDs per name
    synthetic.write_ct_series(ph, root / name, patient={"name": f"SENT^{name.upper()}", "id": patient_id}, seed=seed)
    return root / name


@pytest.mark.parametrize("kind", ["get", "web"])
def test_send_then_find(pacs_net: Orthanc, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _new_series(tmp_path, f"sent-{kind}", f"P-SENT-{kind}")
    (folder / "notes.txt").write_text("not dicom")
    no_uid = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0])
    del no_uid.SOPInstanceUID
    no_uid.save_as(folder / "zz-no-uid.dcm")
    client = client_for(node_for(kind, pacs_net))
    report = client.send([folder])
    assert report.sent == 6 and len(report.errors) == 2, report.errors
    assert "notes.txt: not DICOM, not sent" in report.errors[0]
    assert "zz-no-uid.dcm: no valid SOP" in report.errors[1] and report.errors[1].endswith("UID, not sent")
    found = client.find(Query(patient_id=f"P-SENT-{kind}")).studies
    assert len(found) == 1 and found[0].series[0].instances == 6


def test_cli_send(pacs_net: Orthanc, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _new_series(tmp_path, "cli", "P-SENT-CLI")
    assert radscope(["pacs", "send", dimse(pacs_net), str(folder)]) == 0
    assert "sent 6 instance(s)" in capsys.readouterr().out
    assert radscope(["pacs", "find", dimse(pacs_net), "--patient-id", "P-SENT-CLI", "--json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert len(doc["studies"]) == 1 and doc["studies"][0]["series"][0]["instances"] == 6


def test_pacs_pushes_to_our_storage_scp(pacs_net: Orthanc, studies: Studies, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    report = RetrieveReport(store.root)
    sink = Sink(store, Expect(), report)
    with StorageSCP(RADSCOPE_AET, RADSCOPE_MOVE_PORT, sink.take_bytes, host="127.0.0.1"):
        orthanc_ids = pacs_net.rest("POST", "/tools/lookup", studies.axial_study.encode(), "text/plain")
        pacs_net.rest("POST", "/modalities/radscope/store", orthanc_ids[0]["ID"].encode(), "text/plain")
    assert report.stored == 24 and not report.errors
    assert len(store.present(studies.axial_study, studies.axial_series)) == 24


def _elapsed(fn) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    with pytest.raises(PacsError) as info:
        fn()
    return time.monotonic() - t0, str(info.value)


def test_bad_dimse_nodes_fail_fast_and_clearly(pacs_net: Orthanc) -> None:
    cases = {
        "dimse://WRONGAET@127.0.0.1:4242": "association rejected: Called AE title not recognised",
        "dimse://ORTHANC@127.0.0.1:4299": "Connection refused",
        "dimse://ORTHANC@127.0.0.1:8042": "did not answer as a DICOM node",
    }
    for spec, reason in cases.items():
        seconds, message = _elapsed(lambda: client_for(resolve(spec)).echo())
        assert reason in message and spec in message
        assert seconds < 10, (spec, seconds)
    silent = socket.socket()  # accepts the connection, never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        spec = f"dimse://ORTHANC@127.0.0.1:{silent.getsockname()[1]}"
        seconds, message = _elapsed(lambda: client_for(resolve(spec)).find(Query()))
        assert "no DICOM answer" in message and seconds < 15
    finally:
        silent.close()


def test_bad_web_nodes_fail_fast_and_clearly(pacs_net: Orthanc) -> None:
    seconds, message = _elapsed(lambda: client_for(web_node(pacs_net, "wrong-password")).echo())
    assert "authentication failed (401" in message and "wrong-password" not in message and seconds < 10
    seconds, message = _elapsed(lambda: client_for(make_node("x", url="http://127.0.0.1:4299/dicom-web")).echo())
    assert "connection refused" in message and seconds < 10
    seconds, message = _elapsed(lambda: client_for(make_node("x", url=f"http://127.0.0.1:{pacs_net.http_port}/nope",
                                                             username=USER, password=PASSWORD)).echo())
    assert "not found (404" in message
    seconds, message = _elapsed(lambda: client_for(make_node("x", url="http://127.0.0.1:4242/dicom-web")).echo())
    assert seconds < 10


def test_hostile_instance_on_the_pacs_is_a_per_instance_error(pacs_net: Orthanc, tmp_path: Path) -> None:
    folder = _new_series(tmp_path, "hostile", "P-HOSTILE")
    files = sorted(folder.iterdir())
    bad = pydicom.dcmread(files[2])
    bad.Rows = 2048  # claims 2048x32 pixels, carries 32x32
    bad.save_as(files[2], enforce_file_format=True)
    pacs_net.upload(files)
    study = str(bad.StudyInstanceUID)
    for kind in NODES:
        report = retrieve(client_for(node_for(kind, pacs_net)), study, store=LocalStore(tmp_path / kind))
        assert report.stored == 5 and report.missing == [str(bad.SOPInstanceUID)], (kind, report)
        assert any(str(bad.SOPInstanceUID) in e for e in report.errors), (kind, report.errors)
        assert not report.complete and "1 missing" in report.summary()


def test_secrets_never_printed_or_logged(pacs_net: Orthanc, studies: Studies, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
                                         radscope_home: Path) -> None:
    import io

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert radscope(["pacs", "add", "pw", "--url", pacs_net.dicomweb_url, "--user", USER, "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("tok-0123456789-secret\n"))
    assert radscope(["pacs", "add", "tok", "--url", pacs_net.dicomweb_url, "--token-stdin"]) == 0
    assert radscope(["pacs", "list"]) == 0
    assert radscope(["pacs", "list", "--json"]) == 0
    assert radscope(["pacs", "echo", "pw"]) == 0
    assert radscope(["pacs", "find", "pw", "--patient-id", "P-DOE"]) == 0
    assert radscope(["pacs", "echo", "tok"]) == 2  # Orthanc knows no bearer tokens: 401
    monkeypatch.setenv("RADSCOPE_PACS_PASSWORD", "wrong-" + PASSWORD)
    monkeypatch.setenv("RADSCOPE_PACS_USER", USER)
    assert radscope(["pacs", "echo", pacs_net.dicomweb_url]) == 2
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text
    assert "DOE^JANE" in out.out and "authentication failed" in out.err
    for secret in (PASSWORD, "tok-0123456789-secret"):
        assert secret not in text
    settings = radscope_home / "pacs-nodes.json"
    assert oct(os.stat(settings).st_mode & 0o777) == "0o600" and PASSWORD in settings.read_text()


def test_no_patient_data_in_logs_at_info(pacs_net: Orthanc, studies: Studies, caplog: pytest.LogCaptureFixture,
                                         tmp_path: Path) -> None:
    caplog.set_level(logging.INFO)
    for kind in ("get", "web"):
        client = client_for(node_for(kind, pacs_net))
        assert client.find(Query(patient_name="DOE*")).studies
        retrieve(client, studies.axial_study, store=LocalStore(tmp_path / kind))
    assert "DOE" not in caplog.text and "P-DOE" not in caplog.text



def test_cli_listen_receives_a_push(pacs_net: Orthanc, studies: Studies, tmp_path: Path) -> None:
    import signal
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "viewer.cli", "pacs", "listen", "--aet", RADSCOPE_AET, "--port",
                             str(RADSCOPE_MOVE_PORT), "--bind", "127.0.0.1", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "listening as RADSCOPE on 127.0.0.1" in proc.stdout.readline()
        ids = pacs_net.rest("POST", "/tools/lookup", studies.oblique_study.encode(), "text/plain")
        pacs_net.rest("POST", "/modalities/radscope/store", ids[0]["ID"].encode(), "text/plain")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"receiving into {tmp_path / studies.oblique_study / studies.oblique_series}" in out
    assert "received 24 new instance(s)" in out
    assert len(list((tmp_path / studies.oblique_study).rglob("*.dcm"))) == 24


def test_c_move_port_in_use_is_named(pacs_net: Orthanc, studies: Studies, tmp_path: Path) -> None:
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier transfers leave TIME_WAIT behind
    busy.bind(("127.0.0.1", RADSCOPE_MOVE_PORT))
    busy.listen()
    try:
        report = retrieve(client_for(node_for("move", pacs_net)), studies.axial_study, store=LocalStore(tmp_path))
    finally:
        busy.close()
    assert not report.complete and len(report.missing) == 24 and report.stored == 0
    assert any(f"cannot listen on 127.0.0.1:{RADSCOPE_MOVE_PORT} as RADSCOPE: port in use" in e for e in report.errors)
