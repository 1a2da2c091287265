"""Find model packages in folders; bad packages are listed with their error, never fatal.

The caller passes the folders (the CLI: the bundled ``resources/models`` and ``RADSCOPE_HOME/models``).
Each folder's entries that are package folders (a ``radscope-model.json`` or a MONAI bundle) or
``.zip`` files are read; a folder that is itself a package counts too. Only cards are read here
(bounded JSON); weights are read, inspected and loaded only when a model is chosen (``load_model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

from inference.package import CARD_NAME, MONAI_METADATA, ModelCard, ModelPackageError, read_card


@dataclass(frozen=True)
class PackageEntry:
    path: Path
    card: ModelCard | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.card is not None


def _is_package(path: Path) -> bool:
    return (path / CARD_NAME).is_file() or (path / MONAI_METADATA).is_file()


def find_packages(folders: Sequence[str | Path]) -> list[PackageEntry]:
    """Every package found (valid or not), folder by folder, in name order within a folder."""
    entries: list[PackageEntry] = []
    seen: set[Path] = set()
    for folder in map(Path, folders):
        if not folder.is_dir():
            continue
        try:
            candidates = [folder] if _is_package(folder) else sorted(
                p for p in folder.iterdir() if (p.is_dir() and _is_package(p)) or (p.is_file() and p.suffix == ".zip"))
        except OSError as exc:
            entries.append(PackageEntry(folder, None, f"{folder}: cannot list the folder ({exc.strerror or exc})"))
            continue
        for path in candidates:
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                entries.append(PackageEntry(path, read_card(path)))
            except ModelPackageError as exc:
                entries.append(PackageEntry(path, None, str(exc)))
            except Exception as exc:  # one bad package never hides the others (nothing here runs its code)
                entries.append(PackageEntry(path, None, f"{path}: cannot read the package ({type(exc).__name__}: {exc})"))
    return entries


def choose_package(entries: Sequence[PackageEntry], name_or_path: str | None = None,
                   modality: str | None = None) -> ModelCard:
    """The package named (or at that path); else the first valid one offered for ``modality``.

    Packages without ``input.modalities`` are offered for any modality, after the specific ones.
    Raises ModelPackageError saying what was available.
    """
    valid = [e.card for e in entries if e.card is not None]
    if name_or_path:
        path = Path(name_or_path)
        if path.exists():
            return read_card(path)
        for card in valid:
            if card.name == name_or_path:
                return card
        names = ", ".join(sorted({c.name for c in valid})) or "none"
        raise ModelPackageError(f"{name_or_path}: no such model package (installed: {names})")
    mod = (modality or "").upper()
    specific = [c for c in valid if mod and mod in c.input.modalities]
    generic = [c for c in valid if not c.input.modalities]
    if specific or generic:
        return (specific or generic)[0]
    offered = "; ".join(f"{c.name} ({', '.join(c.input.modalities)})" for c in valid) or "no valid packages"
    raise ModelPackageError(f"no installed model is offered for modality {modality or '?'} (installed: {offered})")
