"""The layer inspector's decisions without Qt: which probe outcome counts, which jobs a new AI run dropped, and
what the panel computes and shows for the model, series, slice, layer and channel."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.ai import JobScheduler
from viewer.state.layer_inspector import InspectorResults, InspectorSelection, ProbeJobs, probe_target


def test_only_the_newest_job_of_a_kind_counts() -> None:
    jobs = ProbeJobs()
    scheduler = JobScheduler()
    run = scheduler.start("S", "sha", "gradcam", 4)
    first, first_cancel = jobs.open("layer")
    jobs.queued(first, "layer", first_cancel, run)
    tree, tree_cancel = jobs.open("tree")
    jobs.queued(tree, "tree", tree_cancel, run)
    second, second_cancel = jobs.open("layer")  # the user clicked another layer: the first one is cancelled
    jobs.queued(second, "layer", second_cancel, run)
    assert first_cancel.is_set() and not second_cancel.is_set() and not tree_cancel.is_set()
    assert jobs.kinds() == ["layer", "tree"] and jobs.busy
    assert not jobs.finish(first, "layer")  # its late outcome is dropped
    assert jobs.finish(second, "layer") and not jobs.finish(second, "layer")  # shown once
    jobs.cancel_all()
    assert tree_cancel.is_set() and not jobs.busy and not jobs.finish(tree, "tree")


def test_jobs_of_a_superseded_ai_run_are_found_stale() -> None:
    jobs = ProbeJobs()
    scheduler = JobScheduler()
    old_run = scheduler.start("S", "sha", "gradcam", 4)
    job, cancel = jobs.open("tree")
    jobs.queued(job, "tree", cancel, scheduler.submit_probe(lambda model, cancel: None))
    layer, layer_cancel = jobs.open("layer")
    jobs.queued(layer, "layer", layer_cancel, old_run)
    assert jobs.drop_stale(scheduler.is_current) == set()  # still the current run
    scheduler.start("S", "sha", "gradcam++", 4)  # a new run drops the queued probes
    assert jobs.drop_stale(scheduler.is_current) == {"tree", "layer"} and not jobs.busy


def test_probe_outcomes_are_state_the_tabs_render_and_read() -> None:
    """Each outcome is told once to whoever renders it, and read back by kind (the layer table, the examples a
    click goes to, the sanity and feature-visualisation results) instead of off a widget."""
    results = InspectorResults()
    told: list[tuple[str, object]] = []
    results.shown.connect(lambda kind, value: told.append((kind, value)))
    assert results.model_info == {} and results.examples == [] and results.sanity is None and results.featurevis is None
    info = {"rows": [], "name": "net", "has_layers": True}
    results.put("tree", info)
    results.put("examples", ("features.3", 2, ("best", "second")))
    results.put("sanity", ("image 5", "sanity result"))
    results.put("featurevis", ("vis", True))
    results.ran_on("radscope-inference")
    assert [k for k, _ in told] == ["tree", "examples", "sanity", "featurevis"] and told[0][1] is info
    assert results.model_info is info and results.examples == ["best", "second"]
    assert results.sanity == "sanity result" and results.featurevis == "vis" and results.threads == ["radscope-inference"]
    results.put("examples", ("features.3", 5, ()))  # the newest of a kind replaces the last
    assert results.examples == [] and told[-1] == ("examples", ("features.3", 5, ()))


def test_selection_steps_for_model_series_and_slice() -> None:
    sel = InspectorSelection()
    assert sel.next_step(None, 3) == "none"
    assert sel.next_step(("sha", "S"), 3) == "tree"
    assert sel.next_step(("sha", "S"), 3) == ""  # tree asked for, no layer yet
    sel.choose_layer("features.3")
    maps = np.zeros((4, 2, 2), np.float32)
    maps[2] = 1.0  # channel 2 is the most active on this slice
    assert not sel.set_maps("features.0", maps, 3)  # a late answer for another layer
    assert sel.set_maps("features.3", maps, 3) and sel.shown_channel() == 2
    assert sel.next_step(("sha", "S"), 3) == "" and sel.next_step(("sha", "S"), 5) == "layer"
    sel.pick_channel(1)  # the user's channel stays on the next slice
    maps5 = np.zeros((4, 2, 2), np.float32)
    maps5[3] = 1.0
    assert sel.set_maps("features.3", maps5, 5) and sel.shown_channel() == 1
    sel.choose_layer("features.3")  # the same layer again: the pick stays
    assert sel.channel == 1 and not sel.auto_channel
    sel.choose_layer("features.0")  # another layer: the most active channel again
    assert sel.channel is None and sel.auto_channel
    assert sel.next_step(("sha2", "S"), 5) == "tree"  # another model: everything starts over
    assert (sel.layer, sel.channel, sel.maps) == (None, None, None)
    sel.forget_tree()
    assert sel.next_step(("sha2", "S"), 5) == "tree"


@pytest.fixture(scope="module")
def sagittal_blob(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.support.blob_model import blob_phantom
    from viewer.dicom import load_volume, scan
    from viewer.dicom.synthetic import write_ct_series

    ph, centre = blob_phantom()
    out = tmp_path_factory.mktemp("sagittal")
    write_ct_series(ph, out, orientation="sagittal")
    (stack,) = scan([out]).stacks
    return load_volume(stack, integers=True), centre


def test_probes_read_what_the_run_feeds_the_model(sagittal_blob) -> None:  # type: ignore[no-untyped-def]
    """A run on reformats: the reformat slice through the crosshair, read from the run's own lazy input, worded
    in the model's plane, its maps put on the acquired grid where that slice lies. An acquired run (or none):
    the acquired slice under the crosshair, as before."""
    from viewer.ai.model_input import model_input
    from viewer.ai.reformat_run import ReformatInput, input_for, new_results

    vol, centre = sagittal_blob
    acquired = model_input(vol)
    key = JobScheduler().start("s", "sha", "gradcam", 1)
    results = new_results(key, ["blob"], vol, "axial")
    run_input = input_for(results, acquired)
    assert isinstance(run_input, ReformatInput)
    target = probe_target(vol, centre, acquired, results, run_input)
    k = results.slice_under(vol, centre)
    assert target.view is run_input and target.k == k and target.plane == "axial"
    assert abs(results.grid.patient_position(k) - centre[2]) <= results.grid.spacing[2] / 2
    assert target.text == f"axial reformat slice {k + 1}, z = {results.grid.patient_position(k):.1f} mm"
    np.testing.assert_array_equal(target.image(), run_input[k])
    assert target.shape == run_input.shape[1:] != vol.shape[1:]
    # the blob's brightest pixel on the probed image is the blob's centre (in the reformat's plane)
    r, c = np.unravel_index(int(np.argmax(target.image())), target.shape)
    assert np.linalg.norm(results.grid.index_to_lps((c, r, k))[:2] - centre[:2]) <= 1.5 * results.grid.spacing[0]

    # its maps over the views: on the acquired grid as to_acquired puts a map on that slice alone
    values = np.random.default_rng(1).random(target.shape).astype(np.float32)
    placed = np.zeros(vol.shape, np.float32)
    for index, part in target.on_acquired(values):
        placed[index] = part
    alone = np.zeros(results.grid.shape, np.float32)
    alone[k] = values
    np.testing.assert_allclose(placed, results.grid.to_acquired(alone), atol=1e-5)
    assert placed.max() > 0.9 and (placed > 0).any(axis=(0, 2)).sum() <= 3  # a slab across the sagittal slices

    # an acquired-plane run, and no run at all: the acquired slice under the crosshair
    flat = new_results(key, ["blob"], vol, None)
    for res, inp in ((flat, input_for(flat, acquired)), (None, None), (results, None)):
        t = probe_target(vol, centre, acquired, res, inp)
        ka = int(np.floor(vol.lps_to_index(centre)[2] + 0.5))
        assert (t.view, t.k, t.text, t.plane, t.grid) == (acquired, ka, f"image {ka + 1}", "", None)
        np.testing.assert_array_equal(t.image(), np.asarray(acquired[ka], np.float32))
        ((index, part),) = list(t.on_acquired(values))
        assert index == ka and part is values
    sel = InspectorSelection()
    sel.next_step(("sha", "S"), ka)
    sel.choose_layer("features")
    assert sel.set_maps("features", np.zeros((1, 2, 2)), ka)
    assert sel.slice_text == f"image {ka + 1}"
    assert sel.next_step(("sha", "S"), ka) == "" and sel.next_step(("sha", "S"), ka, "axial") == "layer"
    assert sel.set_maps("features", np.zeros((1, 2, 2)), ka, "axial", target.text) and sel.slice_text == target.text
    assert sel.next_step(("sha", "S"), ka, "axial") == ""
