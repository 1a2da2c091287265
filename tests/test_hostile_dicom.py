"""The hostile DICOM corpus (tests/hostile): every bad file is a per-file error naming it and the reason,
and the good series beside it still loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile import Case, case_ids, cases
from viewer.dicom import load_volume, scan


@pytest.mark.parametrize("hostile", cases("dicom"), ids=case_ids)
def test_dicom_case_scans_and_good_series_loads(hostile: Case, tmp_path: Path) -> None:
    target = hostile.build(tmp_path / hostile.name)
    result = scan([target])
    assert len(result.stacks) == hostile.good, (result.stacks, result.errors)
    for stack in result.stacks:
        vol = load_volume(stack)
        assert vol.array.shape[0] == stack.n_slices
    bad = [str(Path(target) / name) for name in hostile.extra.get("bad", ())]  # type: ignore[attr-defined]
    if hostile.outcome == "error":
        named = {e.path: e.error for e in result.errors}
        for path in bad:
            assert path in named, (path, result.errors)
            for word in hostile.mentions:
                assert word.lower() in named[path].lower(), (word, named[path])
