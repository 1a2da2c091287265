"""PACS nodes: saved in ``RADSCOPE_HOME/pacs-nodes.json`` (mode 0600: it may hold credentials) or given
inline as ``dimse://AET@host:port`` / ``http(s)://host/dicom-web``.

Credentials are fields excluded from ``repr`` and never part of :meth:`describe`, so a node can be
printed or logged safely.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from viewer.pacs.errors import NodeSpecError

FORMAT = "radscope-pacs-nodes/1"
FILE_NAME = "pacs-nodes.json"
DEFAULT_OUR_AET = "RADSCOPE"
DEFAULT_MOVE_PORT = 11113
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HOST = re.compile(r"^[A-Za-z0-9_.:\[\]-]{1,253}$")


def check_aet(aet: str, what: str = "AE title") -> str:
    """An AE title: 1-16 characters of the default character repertoire, no backslash, not blank."""
    if not 0 < len(aet) <= 16 or not aet.strip() or "\\" in aet or any(not 32 <= ord(c) < 127 for c in aet):
        raise NodeSpecError(f"invalid {what} {aet!r}: 1-16 printable ASCII characters, no backslash")
    return aet.strip()


def check_port(value: Any, what: str = "port") -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise NodeSpecError(f"invalid {what} {value!r}: a number 1-65535") from None
    if not 0 < port < 65536:
        raise NodeSpecError(f"invalid {what} {port}: a number 1-65535")
    return port


def check_host(host: str) -> str:
    if not _HOST.match(host or ""):
        raise NodeSpecError(f"invalid host {host!r}")
    return host.strip("[]")


@dataclass(frozen=True)
class DimseNode:
    """A DIMSE peer: ``ae_title@host:port``; we call it as ``our_aet``; retrieval by C-GET or C-MOVE
    (C-MOVE sends to our storage SCP, which listens on ``move_port`` and must be known to the PACS as
    ``our_aet``)."""

    name: str
    ae_title: str
    host: str
    port: int
    our_aet: str = DEFAULT_OUR_AET
    retrieve: str = "get"
    move_port: int = DEFAULT_MOVE_PORT

    def describe(self) -> str:
        spec = f"dimse://{self.ae_title}@{self.host}:{self.port}"
        where = spec if self.name.startswith("dimse://") else f"{self.name} ({spec})"
        return f"{where} as {self.our_aet}, C-{self.retrieve.upper()}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "dimse", **{k: v for k, v in asdict(self).items() if k != "name"}}


@dataclass(frozen=True)
class WebNode:
    """A DICOMweb service root (``https://host/dicom-web``) with optional basic or bearer credentials."""

    name: str
    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    verify: bool = True

    def describe(self) -> str:
        auth = "basic auth" if self.username else ("bearer token" if self.token else "no auth")
        tls = "" if self.verify else ", certificate NOT verified"
        where = self.url if self.name.startswith("http") else f"{self.name} ({self.url})"
        return f"{where}, {auth}{tls}"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "dicomweb", "url": self.url, "verify": self.verify}
        for key in ("username", "password", "token", "ca_bundle"):
            if getattr(self, key):
                doc[key] = getattr(self, key)
        return doc


Node = DimseNode | WebNode


def _dimse_from(name: str, aet: str, host: str, port: Any, options: dict[str, Any]) -> DimseNode:
    retrieve = str(options.get("retrieve", "get")).lower()
    if retrieve not in ("get", "move"):
        raise NodeSpecError(f"node {name}: retrieve must be 'get' or 'move', not {retrieve!r}")
    return DimseNode(
        name=name, ae_title=check_aet(aet, "called AE title"), host=check_host(host), port=check_port(port),
        our_aet=check_aet(str(options.get("our_aet") or DEFAULT_OUR_AET), "our AE title"), retrieve=retrieve,
        move_port=check_port(options.get("move_port") or DEFAULT_MOVE_PORT, "C-MOVE port"),
    )


def _web_from(name: str, url: str, options: dict[str, Any]) -> WebNode:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NodeSpecError(f"invalid DICOMweb URL for node {name}: needs http(s)://host/path")
    username = options.get("username") or (unquote(parts.username) if parts.username else None)
    password = options.get("password") or (unquote(parts.password) if parts.password else None)
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    if bool(username) != bool(password):
        raise NodeSpecError(f"node {name}: basic auth needs both a user name and a password")
    if username and options.get("token"):
        raise NodeSpecError(f"node {name}: give basic auth or a bearer token, not both")
    return WebNode(
        name=name, url=clean, username=username, password=password, token=options.get("token") or None,
        ca_bundle=options.get("ca_bundle") or None, verify=bool(options.get("verify", True)),
    )


def parse_inline(spec: str) -> Node:
    """``dimse://AET@host:port[?our_aet=X&retrieve=move&move_port=N]`` or an ``http(s)://`` URL.

    Basic-auth credentials in a URL (``https://user:pass@host/...``) are accepted but never shown.
    """
    if spec.startswith(("http://", "https://")):
        return _web_from(_redacted(spec), spec, {})
    if not spec.startswith("dimse://"):
        raise NodeSpecError(f"not a node spec: {spec!r} (dimse://AET@host:port or http(s)://host/dicom-web)")
    parts = urlsplit(spec)
    m = re.match(r"^([^@]+)@(\[[^\]]+\]|[^:]+):(\d+)$", parts.netloc)
    if not m:
        raise NodeSpecError(f"invalid DIMSE spec {spec!r}: dimse://AET@host:port")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"our_aet", "retrieve", "move_port"}
    if unknown:
        raise NodeSpecError(f"unknown option(s) {', '.join(sorted(unknown))} in {spec!r}")
    return _dimse_from(spec, unquote(m.group(1)), m.group(2), m.group(3), options)


def _redacted(url: str) -> str:
    """The URL without user info (for names and messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def node_from_json(name: str, doc: Any) -> Node:
    if not isinstance(doc, dict):
        raise NodeSpecError(f"node {name}: not an object")
    kind = doc.get("kind")
    if kind == "dimse":
        return _dimse_from(name, str(doc.get("ae_title", "")), str(doc.get("host", "")), doc.get("port"), doc)
    if kind == "dicomweb":
        return _web_from(name, str(doc.get("url", "")), doc)
    raise NodeSpecError(f"node {name}: unknown kind {kind!r}")


class NodeBook:
    """The saved nodes (``RADSCOPE_HOME/pacs-nodes.json``): read, add, remove; written atomically, 0600."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from viewer import paths

            path = paths.home() / FILE_NAME
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"format": FORMAT, "nodes": {}}
        except OSError as exc:
            raise NodeSpecError(f"{self.path}: cannot read ({exc.strerror})") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise NodeSpecError(f"{self.path}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("nodes"), dict):
            raise NodeSpecError(f"{self.path}: not a {FORMAT} file")
        return doc

    def _write(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".pacs-nodes-", dir=self.path.parent)  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def nodes(self) -> dict[str, Node]:
        """Every saved node; one that cannot be read raises naming it."""
        return {name: node_from_json(name, doc) for name, doc in self._read()["nodes"].items()}

    def get(self, name: str) -> Node | None:
        doc = self._read()["nodes"].get(name)
        return None if doc is None else node_from_json(name, doc)

    def add(self, node: Node, *, replace: bool = False) -> None:
        if not _NAME.match(node.name):
            raise NodeSpecError(f"invalid node name {node.name!r}: letters, digits, '_', '.', '-' (max 64)")
        doc = self._read()
        if node.name in doc["nodes"] and not replace:
            raise NodeSpecError(f"node {node.name} exists already (remove it first, or --replace)")
        doc["nodes"][node.name] = node.to_json()
        self._write(doc)

    def remove(self, name: str) -> bool:
        doc = self._read()
        if doc["nodes"].pop(name, None) is None:
            return False
        self._write(doc)
        return True


def make_node(name: str, *, dimse: str | None = None, url: str | None = None, **options: Any) -> Node:
    """A node from ``pacs add``'s arguments (``dimse`` is ``AET@HOST:PORT``)."""
    if (dimse is None) == (url is None):
        raise NodeSpecError("give exactly one of --dimse AET@HOST:PORT or --url URL")
    if dimse is not None:
        m = re.match(r"^([^@]+)@(\[[^\]]+\]|[^:]+):(\d+)$", dimse)
        if not m:
            raise NodeSpecError(f"invalid --dimse {dimse!r}: AET@HOST:PORT")
        return _dimse_from(name, m.group(1), m.group(2), m.group(3), options)
    return _web_from(name, str(url), options)


ENV_USER, ENV_PASSWORD, ENV_TOKEN = "RADSCOPE_PACS_USER", "RADSCOPE_PACS_PASSWORD", "RADSCOPE_PACS_TOKEN"


def resolve_with_env(spec: str, book: NodeBook | None = None) -> Node:
    """:func:`resolve`, and an inline DICOMweb spec without credentials takes them from the environment
    (``$RADSCOPE_PACS_USER`` + ``$RADSCOPE_PACS_PASSWORD``, or ``$RADSCOPE_PACS_TOKEN``)."""
    from dataclasses import replace

    node = resolve(spec, book)
    if isinstance(node, WebNode) and "://" in spec and not (node.username or node.token):
        user, password, token = (os.environ.get(k) for k in (ENV_USER, ENV_PASSWORD, ENV_TOKEN))
        if user and password:
            node = replace(node, username=user, password=password)
        elif token:
            node = replace(node, token=token)
    return node


def resolve(spec: str, book: NodeBook | None = None) -> Node:
    """A saved node by name, or an inline spec."""
    if "://" in spec:
        return parse_inline(spec)
    node = (book or NodeBook()).get(spec)
    if node is None:
        raise NodeSpecError(
            f"unknown PACS node {spec!r}: save it with `radscope pacs add`, or give dimse://AET@host:port "
            "or http(s)://host/dicom-web"
        )
    return node
