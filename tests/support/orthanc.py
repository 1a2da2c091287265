"""A real Orthanc (Debian `orthanc` + `orthanc-dicomweb`) for the PACS tests and benchmark.

Orthanc 1.10 has no option to bind one address (it listens on every interface), so it runs inside a
private network namespace (`unshare --net`, loopback up): nothing outside this machine's new namespace can
reach it. The clients join that namespace with `setns` on the calling thread (:meth:`Orthanc.inside`);
threads and processes started there inherit it. Config and storage live in a temporary folder.

Use: the session fixture `orthanc` (skips locally / fails in CI when Orthanc is missing), then
`with orthanc.inside(): ...` (the function fixture `pacs_net` does that for a whole test).
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import missing, require_binary

DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
CLONE_NEWNET = 0x40000000
AET = "ORTHANC"
USER, PASSWORD = "radscope-test", "s3cret-Passw0rd-never-printed"
RADSCOPE_AET, RADSCOPE_MOVE_PORT = "RADSCOPE", 11113
MOVESCU_AET, MOVESCU_PORT = "MOVESCU", 11114
DICOM_PORT, HTTP_PORT = 4242, 8042


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Orthanc:
    """One Orthanc in its own network namespace; ports are those of that fresh namespace (all free)."""

    def __init__(self, workdir: Path, *, tls_cert: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.dicom_port, self.http_port = DICOM_PORT, HTTP_PORT
        self.tls_cert = tls_cert
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "orthanc.log"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}/dicom-web"

    @property
    def dimse_spec(self) -> str:
        return f"dimse://{AET}@127.0.0.1:{self.dicom_port}"

    def config(self) -> dict[str, Any]:
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "Name": "radscope-test", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": AET,
            "DicomCheckCalledAet": True, "RemoteAccessAllowed": True, "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
            "DicomModalities": {
                "radscope": [RADSCOPE_AET, "127.0.0.1", RADSCOPE_MOVE_PORT],
                "movescu": [MOVESCU_AET, "127.0.0.1", MOVESCU_PORT],
            },
            "DicomScuTimeout": 5, "DicomThreadsCount": 8, "SaveJobs": False, "HttpsVerifyPeers": False, "StorageCompression": False,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": bool(self.tls_cert)},
            "LimitFindResults": 0, "LimitFindInstances": 0,
        }
        if self.tls_cert:
            doc.update({"SslEnabled": True, "SslCertificate": str(self.tls_cert)})
        return doc

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self, timeout_s: float = 30.0) -> Orthanc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=1))
        log = open(self.log, "wb")  # noqa: SIM115 - kept open for the process's life
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec Orthanc "$0"', str(cfg)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                with self.inside():
                    if self.rest("GET", "/system").get("Version"):
                        return self
            except (OSError, urllib.error.URLError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout_s} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Run the calling thread (and what it starts) inside Orthanc's network namespace."""
        assert self.proc is not None, "Orthanc is not running"
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{self.proc.pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)
            os.close(target)

    # ---- REST (call inside()) -----------------------------------------------------------------------
    def rest(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> Any:
        req = urllib.request.Request(f"{self.scheme}://127.0.0.1:{self.http_port}{path}", data=body, method=method)
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        if body is not None:
            req.add_header("Content-Type", content_type)
        ctx = None
        if self.tls_cert:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.tls_cert))
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def upload(self, files: Sequence[Path]) -> int:
        """POST each file to /instances; the number stored."""
        n = 0
        for f in files:
            self.rest("POST", "/instances", Path(f).read_bytes(), "application/dicom")
            n += 1
        return n

    def clear(self) -> None:
        for pid in self.rest("GET", "/patients") or []:
            self.rest("DELETE", f"/patients/{pid}")

    def listening(self) -> str:
        """``ss -ltnp`` inside the namespace (what Orthanc listens on)."""
        out = subprocess.run(["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "ss", "-ltnp"],  # type: ignore[union-attr]
                             capture_output=True, text=True, timeout=10)
        return out.stdout


def orthanc_available() -> None:
    """Skip (locally) or fail (CI) unless Orthanc, its DICOMweb plugin and unshare are there."""
    require_binary("Orthanc", "orthanc")
    if not Path(DICOMWEB_PLUGIN).exists():
        missing("Orthanc's DICOMweb plugin", "orthanc-dicomweb")
    require_binary("unshare", "util-linux")
    require_binary("ip", "iproute2")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        message = f"cannot create a network namespace for Orthanc (unshare --net: {probe.stderr.decode().strip()})"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    orthanc_available()
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir / "storage", ignore_errors=True)


@pytest.fixture
def pacs_net(orthanc: Orthanc) -> Iterator[Orthanc]:
    """The test runs inside Orthanc's network namespace."""
    with orthanc.inside():
        yield orthanc
