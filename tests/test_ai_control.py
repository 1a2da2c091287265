"""The AI controller's decisions without Qt (viewer.state.ai_control.AIControl): real tiny model packages run
inline (tests/support/ai_engine.py) on generated CT series whose truth is known.

Which model runs on which series, automatic runs against intended-use refusals, memory and cache hits against
inference, stale batches, status lines that never outlive their series or model, findings at the thresholds in
force, and moving the views to the top finding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inference.cache import ResultCache
from inference.package import read_card
from tests.support.ai_engine import InlineCache, InlineEngine, settle
from tests.support.packages import LUNG_INPUT, write_tiny_package
from viewer.dicom import Volume, open_volume
from viewer.state.ai_control import AIControl
from viewer.state.ai_models import ModelEntry
from viewer.state.series import SeriesState

pytestmark = pytest.mark.slow  # torch import + three tiny exports: seconds


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, tiny_package: Path) -> dict[str, ModelEntry]:
    """tiny (CT only), any (no modality list, a lung window), thin (CT, only for slices up to 1 mm thick)."""
    root = tmp_path_factory.mktemp("ai_control_models")
    paths = {"tiny": tiny_package,
             "any": write_tiny_package(root / "any", seed=1, name="any", input=LUNG_INPUT),
             "thin": write_tiny_package(root / "thin", seed=2, name="thin", scope={"slice_thickness_mm": [0.5, 1.0]})}
    return {name: ModelEntry(name, path, card=read_card(path)) for name, path in paths.items()}


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated chest CT (12 slices of 64x64, 5 mm thick, body part CHEST)."""
    from phantom import ChestParams, make_chest_ct
    from viewer.dicom.synthetic import write_ct_series

    out = tmp_path_factory.mktemp("ai_control_ct")
    write_ct_series(make_chest_ct(ChestParams(n_slices=12, matrix=(64, 64)), seed=3), out)
    return out


def ct(series_dir: Path) -> Volume:
    return open_volume(series_dir)


def as_modality(vol: Volume, modality: str, uid: str) -> Volume:
    vol.info = replace(vol.info, modality=modality, stack_id=uid, series_uid=uid)
    return vol


def control(models: list[ModelEntry], cache: InlineCache | None = None) -> tuple[AIControl, InlineEngine, list]:
    engine = InlineEngine()
    ctl = AIControl(engine, models, cache=cache)
    finished: list = []
    ctl.finished.connect(finished.append)
    return ctl, engine, finished


def test_the_control_runs_a_real_model_on_a_ct_and_shows_probabilities(packages, series_dir: Path) -> None:
    from inference.runner import Runner

    ctl, engine, finished = control([packages["tiny"]])
    vol = ct(series_dir)
    series = SeriesState(vol)
    series.set_crosshair(vol.index_to_lps((32, 32, 7)))
    ctl.set_series(series)
    assert ctl.busy and ctl.run_state.progress.running and ctl.run_state.progress.total == 12
    settle(ctl, engine)
    assert engine.ran[0] == 7  # the visible slice first
    assert sorted(engine.ran) == list(range(12)) and len(finished) == 1 and not ctl.busy
    assert ctl.run_state.progress.eta_text == "done" and ctl.state.device == "cpu"
    expected = list(Runner(packages["tiny"].path, device="cpu").run(vol.array.astype(np.float32), method="gradcam"))
    scores = np.concatenate([r.scores for r in expected])
    np.testing.assert_allclose(ctl.results.scores, scores, atol=1e-5)
    layer = series.overlay(ctl.overlay_name("b"))
    assert layer is not None and layer.array is ctl.results.heatmap("b") and layer.threshold == pytest.approx(0.5)
    maps = np.concatenate([r.heatmaps["b"] for r in expected])  # probability units: map times score, coded in uint8
    np.testing.assert_allclose(ctl.results.heatmap("b"), maps * scores[:, 1, None, None], atol=0.5 / 255 + 1e-5)
    assert "gradcam++" in ctl.run_state.methods and ctl.run_state.loaded_model == packages["tiny"].card.weights.sha256


def test_findings_follow_the_thresholds_in_force(packages, series_dir: Path) -> None:
    ctl, engine, _ = control([packages["tiny"]])
    series = SeriesState(ct(series_dir))
    ctl.set_series(series)
    settle(ctl, engine)
    a = ctl.results.label_scores("a")
    low = float(np.nanmin(a)) - 1e-3
    ctl.state.set_overlay("a", threshold=low)  # every slice above: one run over the whole series
    (f,) = [f for f in ctl.run_state.findings if f.label == "a"]
    assert (f.first_slice, f.last_slice, f.peak_slice) == (0, 11, int(np.argmax(a)))
    assert series.overlay(ctl.overlay_name("a")).threshold == pytest.approx(low)  # the layer follows the state
    ctl.state.set_overlay("a", threshold=1.0)
    ctl.state.set_overlay("b", threshold=1.0)
    assert ctl.run_state.findings == []
    ctl.state.set_overlay("a", contour=True, opacity=0.3)
    layer = series.overlay(ctl.overlay_name("a"))
    assert layer.contour == pytest.approx(1.0) and layer.opacity == pytest.approx(0.3)


def test_moving_to_the_top_finding_puts_the_crosshair_on_its_peak(packages, series_dir: Path) -> None:
    ctl, engine, _ = control([packages["tiny"]])
    vol = ct(series_dir)
    series = SeriesState(vol)
    ctl.follow_findings(once=True)
    ctl.set_series(series)
    settle(ctl, engine)
    k = ctl.results.most_suspicious_slice()
    row, col = ctl.results.peak_on_slice(k)
    np.testing.assert_allclose(series.crosshair_index(), (col, row, k), atol=1e-6)
    assert ctl.run_state.current_slice == k and engine.scheduler.order() == []
    series.set_crosshair(vol.index_to_lps((0, 0, 0)))  # the user moves on; a later run does not pull back
    ctl.choose_method("gradcam++")
    settle(ctl, engine)
    assert round(series.crosshair_index()[2]) == 0


def test_which_model_runs_on_which_series_and_status_lines_never_go_stale(packages, series_dir: Path) -> None:
    ctl, engine, finished = control([packages["tiny"]])
    mr = SeriesState(as_modality(ct(series_dir), "MR", "MR-1"))
    ctl.set_series(mr)
    assert ctl.state.status == "tiny is not offered for MR series; press Run to force it"
    assert ctl.results is None and not ctl.busy and ctl.run_state.progress.total == 0 and engine.ran == []
    ctl.set_series(SeriesState(ct(series_dir)))  # a CT: the status line about the MR is gone, the model runs
    assert ctl.state.status == "" and ctl.busy
    settle(ctl, engine)
    assert len(finished) == 1
    ctl.set_series(SeriesState(as_modality(ct(series_dir), "MR", "MR-2")))
    assert ctl.run_state.progress.total == 0 and ctl.run_state.findings == []  # no "12/12 done" on the MR
    assert ctl.state.status.startswith("tiny is not offered for MR")
    ctl.set_series(None)  # the series is closed: nothing said about it stays
    assert ctl.state.status == "" and ctl.run_state.results is None
    # another installed model offered for MR: chosen by itself for the MR series
    ctl2, engine2, _ = control([packages["tiny"], packages["any"]])
    ctl2.set_series(SeriesState(as_modality(ct(series_dir), "MR", "MR-3")))
    assert ctl2.state.model == "any" and ctl2.busy and ctl2.state.status == ""
    settle(ctl2, engine2)
    assert ctl2.results.complete and ctl2.results.key.model_sha256 == packages["any"].card.weights.sha256


def test_a_series_outside_intended_use_is_refused_until_the_user_confirms(packages, series_dir: Path) -> None:
    ctl, engine, finished = control([packages["thin"]])
    asked: list[str] = []
    ctl.scope.confirm = lambda text: asked.append(text) or False
    series = SeriesState(ct(series_dir))
    ctl.set_series(series)
    assert ctl.state.status.startswith("thin not run: ") and "Press Run to run it anyway" in ctl.state.status
    assert "thickness" in ctl.state.status.lower() and not ctl.busy and engine.ran == []
    assert ctl.run_by_hand() is None and len(asked) == 1 and series.banner == ""  # the user said no
    ctl.scope.confirm = lambda text: True
    assert ctl.run_by_hand() is not None
    assert series.banner.startswith("outside intended use: ") and ctl.state.status == ""
    settle(ctl, engine)
    assert len(finished) == 1 and ctl.results.complete
    ctl.set_series(SeriesState(ct(series_dir)))  # a new series: not forced any more
    assert not ctl.scope.forced and ctl.state.status.startswith("thin not run: ")


def test_memory_and_cache_hits_need_no_inference_and_say_so_only_for_their_series(packages, series_dir: Path,
                                                                                 tmp_path: Path) -> None:
    cache = InlineCache(ResultCache(tmp_path / "cache"))
    ctl, engine, finished = control([packages["tiny"], packages["any"]], cache)
    ctl.set_series(SeriesState(ct(series_dir)))
    assert engine.ran == [] and ctl.busy  # nothing infers while the cache is asked
    settle(ctl, engine, cache)
    first = ctl.results
    assert len(engine.ran) == 12 and len(cache.stored) == 1 and first.complete
    # the same series again in this session: from memory, nothing runs, nothing is asked
    ctl.set_series(SeriesState(as_modality(ct(series_dir), "CT", "other")))
    settle(ctl, engine, cache)
    ctl.set_series(SeriesState(ct(series_dir)))
    settle(ctl, engine, cache)
    assert len(engine.ran) == 24 and ctl.results is first and len(finished) == 3
    # a new window (new control): from the cache
    ctl2, engine2, finished2 = control([packages["tiny"], packages["any"]], cache)
    ctl2.set_series(SeriesState(ct(series_dir)))
    settle(ctl2, engine2, cache)
    assert engine2.ran == [] and len(finished2) == 1
    assert ctl2.state.status == "tiny: results from the cache (computed before with gradcam)"
    np.testing.assert_allclose(ctl2.results.scores, first.scores, atol=1e-6)
    assert ctl2.select_model("any")  # another model: the cache line belongs to the old one
    assert ctl2.state.status == ""
    settle(ctl2, engine2, cache)
    assert ctl2.results.key.model_sha256 == packages["any"].card.weights.sha256 and len(engine2.ran) == 12


def test_a_stale_batch_never_paints_the_next_series(packages, series_dir: Path) -> None:
    from viewer.ai import JobKind
    from viewer.ai.batches import BatchOutput, BatchResult

    ctl, engine, finished = control([packages["tiny"]])
    ctl.set_series(SeriesState(ct(series_dir)))
    engine.pump(ctl, max_batches=1)
    old_key = ctl.results.key
    b = SeriesState(as_modality(ct(series_dir), "CT", "B"))
    ctl.set_series(b)
    before = ctl.results.n_done
    redraws: list[bool] = []
    b.overlaysChanged.connect(lambda: redraws.append(True))
    stale = BatchResult(old_key, JobKind.SERIES, BatchOutput((1,), np.ones((1, 2), np.float32), {}), 0.01, "cuda:0")
    ctl.on_batch(stale)
    assert ctl.results.n_done == before and finished == [] and ctl.results.key != old_key
    assert redraws == [] and ctl.state.device != "cuda:0" and ctl.first_heatmap_at is None
    settle(ctl, engine)
    assert len(finished) == 1 and ctl.results.key.stack_id == "B"


def test_failures_and_notices_reach_the_status_line_once(packages, series_dir: Path) -> None:
    ctl, engine, _ = control([packages["tiny"]])
    notes: list[str] = []
    ctl.notify.connect(notes.append)
    ctl.on_notice("GPU out of memory: continuing on the CPU")
    ctl.on_notice("GPU out of memory: continuing on the CPU")
    assert notes == ["AI: GPU out of memory: continuing on the CPU"]
    assert ctl.state.status == "GPU out of memory: continuing on the CPU"
    assert not ctl.use_model("no-such-model") and "tiny" in notes[-1] and "no-such-model" in notes[-1]
    assert ctl.use_model(str(packages["tiny"].path)) and ctl.state.model == "tiny" and len(ctl.state.models) == 1
    # named by the user: no other model is picked for an MR, but its intended use still holds it back
    ctl.set_series(SeriesState(as_modality(ct(series_dir), "MR", "MR")))
    assert ctl.state.model == "tiny" and not ctl.busy
    assert ctl.state.status.startswith("tiny not run: ") and "MR" in ctl.state.status
    ctl.scope.confirm = lambda text: True
    ctl.run_by_hand()
    assert ctl.busy and ctl.state.status == ""
    ctl.on_failed(ctl.results.key, "inference failed on slices [0]: boom")
    assert not ctl.busy and ctl.state.status == "inference failed on slices [0]: boom"
    assert notes[-1] == "AI: inference failed on slices [0]: boom"



def test_the_method_in_force_is_state_and_a_change_reruns_the_series(packages, series_dir: Path) -> None:
    ctl, engine, finished = control([packages["tiny"]])
    ctl.set_series(SeriesState(ct(series_dir)))
    settle(ctl, engine)
    assert ctl.run_state.method == "gradcam" and len(engine.ran) == 12
    ctl.state.set_method("gradcam++")  # the panel's picker writes the state; the control follows it
    assert ctl.method == "gradcam++" and ctl.run_state.method == "gradcam++" and ctl.busy
    settle(ctl, engine)
    assert ctl.results.key.method == "gradcam++" and len(engine.ran) == 24 and len(finished) == 2
    ctl.state.set_method("gradcam")  # back: that run is kept in memory, nothing infers
    settle(ctl, engine)
    assert ctl.results.key.method == "gradcam" and len(engine.ran) == 24 and len(finished) == 3


def test_an_automatic_run_on_images_unlike_the_training_data_stops_and_shows_nothing() -> None:
    """The bundled CT model (real weights and OOD statistics) on a real head CT: the first slices' OOD distances
    stop the automatic run; a run the user confirms shows its overlay under the 'outside intended use' banner."""
    from tests.conftest import pydicom_data_file
    from viewer.dicom import load_volume, scan

    bundled = Path(__file__).resolve().parents[1] / "resources" / "models" / "chest-nodule-demo"
    (stack,) = scan([pydicom_data_file("693_UNCR.dcm")]).stacks
    series = SeriesState(load_volume(stack))
    ctl, engine, finished = control([ModelEntry("chest-nodule-demo", bundled, card=read_card(bundled))])
    ctl.set_series(series)
    assert ctl.busy and not [o for o in series.overlays if o.name.startswith("AI ")]  # the overlay waits
    settle(ctl, engine)
    assert ctl.state.status.startswith("chest-nodule-demo not run: images unlike the training data: 1 of 1 slices")
    assert ctl.results is None and not ctl.busy and finished == []
    assert not [o for o in series.overlays if o.name.startswith("AI ")] and series.banner == ""
    ctl.scope.confirm = lambda text: True
    ctl.run_by_hand()
    settle(ctl, engine)
    assert len(finished) == 1 and series.banner.startswith("outside intended use: images unlike the training data")
    assert series.overlay(ctl.overlay_name("nodule")) is not None and np.isfinite(ctl.results.ood).all()
