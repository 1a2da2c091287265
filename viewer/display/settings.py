"""Viewer settings persisted as JSON under RADSCOPE_HOME (layout, last folder, presets, recent items)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from viewer import paths
from viewer.dicom.volume import WindowPreset

SETTINGS_FILE = "viewer-settings.json"
MAX_RECENT = 10


@dataclass
class ViewerSettings:
    layout: str = "1x1"
    last_folder: str = ""
    recent: list[str] = field(default_factory=list)
    custom_presets: list[dict[str, float | str]] = field(default_factory=list)
    hide_identifying: bool = False
    show_annotations: bool = True
    reviewer: str = ""
    """Name recorded with review flags (read by viewer.review)."""
    review_store: str = ""
    """The review store: a SQLite file or postgresql://user@host/db ('' = RADSCOPE_REVIEW_STORE or the default)."""
    extra: dict[str, object] = field(default_factory=dict)
    """Keys this version does not know (written by other tools or versions): kept as they are."""

    def window_presets(self) -> list[WindowPreset]:
        """The user's own presets (``custom_presets``: ``{"name", "center", "width"}``), invalid ones skipped."""
        out = []
        for p in self.custom_presets:
            try:
                out.append(WindowPreset(str(p["name"]), float(p["center"]), float(p["width"])))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def add_recent(self, path: str) -> None:
        """Put ``path`` first in the recent list (no duplicates, at most :data:`MAX_RECENT`)."""
        self.recent = [path] + [p for p in self.recent if p != path]
        del self.recent[MAX_RECENT:]


def settings_path() -> Path:
    return paths.home() / SETTINGS_FILE


def load_settings() -> ViewerSettings:
    """The saved settings, or defaults when the file is missing or unreadable (with a note on stderr)."""
    path = settings_path()
    if not path.exists():
        return ViewerSettings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        fields = set(ViewerSettings.__dataclass_fields__) - {"extra"}
        known = {k: v for k, v in raw.items() if k in fields}
        s = ViewerSettings(**known, extra={k: v for k, v in raw.items() if k not in fields})
        s.recent = [str(p) for p in s.recent][:MAX_RECENT]
        return s
    except (OSError, ValueError, TypeError) as exc:
        print(f"radscope: ignoring unreadable settings {path}: {exc}", file=sys.stderr)
        return ViewerSettings()


def save_settings(settings: ViewerSettings) -> None:
    """Write atomically (temp file + rename)."""
    path = settings_path()
    tmp = path.with_suffix(".tmp")
    data = asdict(settings)
    data = {**data.pop("extra"), **data}
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(path)
