"""`radscope infer --pacs NODE`: PACS query results as inputs (issue 16 on issue 15), against a real Orthanc
started by the session fixture in its own network namespace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from phantom import ChestParams, make_chest_ct
from tests.support.packages import LUNG_INPUT, write_tiny_package
from tests.support.orthanc import Orthanc, orthanc, pacs_net  # noqa: F401  (fixtures)
from viewer.cli import main
from viewer.dicom import synthetic

pytestmark = pytest.mark.slow


def test_infer_retrieves_the_studies_a_query_finds_then_infers_them(
        pacs_net: Orthanc, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ph = make_chest_ct(ChestParams(n_slices=8, matrix=(48, 48), n_nodules=0), seed=21)
    truth = synthetic.write_ct_series(ph, tmp_path / "src", patient={"name": "RAY^ARCHIVE", "id": "P-INFER-PACS"},
                                      seed=21)
    pacs_net.upload(sorted((tmp_path / "src").iterdir()))
    package = write_tiny_package(tmp_path / "pkg", seed=2, labels=["nodule"], input=LUNG_INPUT)
    out = tmp_path / "out"
    args = ["infer", "--pacs", pacs_net.dimse_spec, "--pacs-patient-id", "P-INFER-PACS", "--model", str(package),
            "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "1 studies match" in err and "1 done" in err, err
    doc = json.loads((out / truth.series_uid / "scores.json").read_text())
    assert [s["sop_instance_uid"] for s in doc["slices"]] == truth.sop_instance_uids
    assert doc["study_uid"] == truth.study_uid and doc["source"]  # the local copy the PACS store holds
    # the same series from disk gives the same scores: the retrieved copy reads exactly like the original
    assert main(["infer", str(tmp_path / "src"), "--model", str(package), "--device", "cpu",
                 "--out", str(tmp_path / "disk")]) == 0
    disk = json.loads((tmp_path / "disk" / truth.series_uid / "scores.json").read_text())
    np.testing.assert_allclose([s["scores"]["nodule"] for s in doc["slices"]],
                               [s["scores"]["nodule"] for s in disk["slices"]], atol=1e-6)
    # a rerun asks for nothing new and infers nothing again
    capsys.readouterr()
    assert main(args + ["--pacs-study", truth.study_uid]) == 0
    err = capsys.readouterr().err
    assert "1 skipped" in err and "0 done" in err, err


def test_an_unreachable_node_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", "--pacs", "dimse://NOBODY@127.0.0.1:9", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "127.0.0.1:9" in err and "Traceback" not in err, err
