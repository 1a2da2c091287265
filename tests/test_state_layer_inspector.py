"""The layer inspector's decisions without Qt: which probe outcome counts, which jobs a new AI run dropped, and
what the panel computes and shows for the model, series, slice, layer and channel."""

from __future__ import annotations

import numpy as np

from viewer.ai import JobScheduler
from viewer.state.layer_inspector import InspectorSelection, ProbeJobs


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
