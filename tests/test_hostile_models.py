"""Hostile model packages (tests/hostile/models.py): nothing in a package ever runs code, installed or chosen;
the error names the file and the member; the other packages keep working."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from inference.archives import pickle_globals
from inference.loading import load_model
from inference.package import ModelPackageError
from inference.registry import find_packages
from tests.hostile import Case, case_ids, cases
from tests.hostile._dicom import good_series
from tests.hostile.models import FIELDS, MARKER, good_pt2, write_package
from tests.support.bounded import run_capped
from viewer.cli import main

MODEL_CASES = cases("models")
FIELDS_INPUT = FIELDS["input"]


def test_the_corpus_covers_every_route_torch_would_run_code_by() -> None:
    names = {c.name for c in MODEL_CASES}
    for route in ("sample-inputs", "pickled-weight", "opaque-constant", "legacy-pickled", "aotinductor", "sympy",
                  "guards-code", "python-target", "torchscript", "state-dict"):
        assert any(route in n for n in names), route


@pytest.mark.parametrize("hostile", MODEL_CASES, ids=case_ids)
def test_loading_refuses_and_runs_nothing(hostile: Case, tmp_path: Path) -> None:
    package = hostile.build(tmp_path / "case")
    if hostile.extra.get("unbounded"):  # unguarded, it would eat all memory: a capped child, not the worker
        error, message = run_capped("from inference.loading import load_model", "load_model(sys.argv[1])",
                                    str(package))
        assert error == "ModelPackageError", (error, message)
    else:
        with pytest.raises(ModelPackageError) as info:
            load_model(package)
        message = str(info.value)
    assert "radscope-model.json" in message  # names the package's card ...
    for word in hostile.mentions:  # ... and the member and the reason
        assert word.lower() in message.lower(), (word, message)
    assert not (tmp_path / MARKER).exists(), "code from the package ran"


def test_good_pt2_still_loads_through_the_inspected_path(tmp_path: Path) -> None:
    model = load_model(write_package(tmp_path / "good", good_pt2()))
    with torch.no_grad():
        assert model(torch.zeros(3, 1, 32, 32)).shape == (3, 2)


def test_pickle_globals_reads_opcodes_without_unpickling(tmp_path: Path) -> None:
    from tests.hostile.models import evil_pickle

    assert pickle_globals(evil_pickle(tmp_path / "x")) == ["__builtin__.exec"]
    assert not (tmp_path / MARKER).exists()
    with pytest.raises(ValueError):
        pickle_globals(b"\x80\x02garbage")


@pytest.fixture
def hostile_home(radscope_home: Path, tmp_path: Path) -> Path:
    """Every hostile package installed under RADSCOPE_HOME/models beside one good package."""
    models = radscope_home / "models"
    for c in MODEL_CASES:
        built = c.build(tmp_path / "built" / c.name)
        shutil.move(built, models / (c.name + built.suffix))  # a rename: the sparse huge card is never copied
    write_package(models / "zz-good", good_pt2(), name="good-one")
    return radscope_home


def _installed(home: Path, name: str) -> Path:
    folder = home / "models" / name
    return folder if folder.exists() else folder.with_name(name + ".zip")


def test_installing_hostile_packages_runs_nothing_at_start(hostile_home: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    entries = find_packages([hostile_home / "models"])
    assert len(entries) == len(MODEL_CASES) + 1  # cards are read, weights are not
    assert main(["models"]) == 0
    assert "good-one" in capsys.readouterr().out
    series = tmp_path / "dcm"
    good_series(series, n=3)
    out = tmp_path / "out"
    # the good package runs beside the hostile ones; each hostile one asked for stops infer with a clear message
    code = main(["infer", str(series), "--out", str(out), "--device", "cpu", "--model", "good-one"])
    assert code == 0, capsys.readouterr().err
    for c in MODEL_CASES:
        code = main(["infer", str(series), "--out", str(out / c.name), "--device", "cpu", "--model",
                     str(_installed(hostile_home, c.name))])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        assert c.mentions[0].lower() in err.lower(), err
    assert not list(tmp_path.rglob(MARKER)), "code from an installed package ran"


@pytest.mark.parametrize("name", ["model-pt2-pickled-sample-inputs", "model-pt2-sympy-eval",
                                  "model-pt2-code-in-parameter-name"])
def test_the_cases_are_real_plain_torch_runs_their_code(name: str, tmp_path: Path) -> None:
    """Without the inspection, torch.export.load itself (or the first call of its module) runs the payload (so
    the refusal above is what saves us)."""
    import contextlib
    import io
    import logging

    (hostile,) = [c for c in MODEL_CASES if c.name == name]
    package = hostile.build(tmp_path / "case")
    logging.getLogger("torch._export.serde.serialize").setLevel(logging.CRITICAL)
    with contextlib.suppress(Exception):
        torch.export.load(io.BytesIO((package / "model.pt2").read_bytes())).module()(torch.zeros(2, 1, 32, 32))
    assert (tmp_path / MARKER).exists()


def test_viewer_refuses_a_hostile_model_and_runs_nothing(tmp_path: Path, radscope_home: Path) -> None:
    """The real viewer (offscreen, --screenshot) auto-runs the chosen package: it is refused, named in the Errors
    panel and on stderr, and its payload never runs."""
    import os
    import subprocess
    import sys

    (hostile,) = [c for c in MODEL_CASES if c.name == "model-pt2-pickled-sample-inputs"]
    package = shutil.move(hostile.build(tmp_path / "built" / "case"), radscope_home / "models" / "evil")
    good_series(tmp_path / "dcm", n=3)
    env = {**os.environ, "RADSCOPE_HOME": str(radscope_home), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "viewer.cli", str(tmp_path / "dcm"), "--model", str(package),
                           "--screenshot", str(tmp_path / "shot.png")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0 and (tmp_path / "shot.png").is_file(), proc.stderr
    assert "model/data/sample_inputs/model.pt" in proc.stderr and "refused" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob(MARKER))


def test_a_hostile_package_fails_only_its_own_series(tmp_path: Path, radscope_home: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """infer without --model: the MR series gets the hostile MR package (refused, its series failed, named in
    errors.json), the PT series gets a good package and is written."""
    import json
    import warnings

    from pydicom.uid import generate_uid

    from tests.hostile._dicom import slice_dataset

    (hostile,) = [c for c in MODEL_CASES if c.name == "model-pt2-sympy-eval"]
    built = hostile.build(tmp_path / "built" / "case")
    card = json.loads((built / "radscope-model.json").read_text())
    card["input"]["modalities"] = ["MR"]
    (built / "radscope-model.json").write_text(json.dumps(card))
    shutil.move(built, radscope_home / "models" / "evil-mr")
    write_package(radscope_home / "models" / "good-pt", good_pt2(), name="good-pt",
                  input={**FIELDS_INPUT, "modalities": ["PT"]})
    for modality in ("MR", "PT"):
        uid, frame = generate_uid(), generate_uid()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in range(3):
                ds = slice_dataset(k, series_uid=uid, study_uid=uid, frame_uid=frame)
                ds.Modality = modality
                (tmp_path / "dcm").mkdir(exist_ok=True)
                ds.save_as(tmp_path / "dcm" / f"{modality}{k}.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    code = main(["infer", str(tmp_path / "dcm"), "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    docs = [json.loads(p.read_text()) for p in out.glob("*/scores.json")]
    assert [d["modality"] for d in docs] == ["PT"] and docs[0]["model"]["name"] == "good-pt"
    errors = json.loads((out / "errors.json").read_text())["errors"]
    assert len(errors) == 1 and "model cannot be loaded" in errors[0]["reason"]
    assert "shape expression" in errors[0]["reason"]
    assert not list(tmp_path.rglob(MARKER))
