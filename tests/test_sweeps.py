"""sweeps.py: the ratios of a weight sweep, queueing it as one group, and finding the sweeps again."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from jaxstyle import gallery, inputs, sweeps
from jaxstyle.errors import WeightsError
from jaxstyle.jobs import JobRunner
from jaxstyle.settings import PRESETS, TransferSettings


def test_the_ratios_a_sweep_may_span_are_the_powers_of_ten_from_a_hundredth_to_a_million():
    assert sweeps.SWEEP_RATIOS == (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0)


@pytest.mark.parametrize(
    ("low", "high", "count", "ratios"),
    [
        (1.0, 10000.0, 5, [1.0, 10.0, 100.0, 1000.0, 10000.0]),
        (1.0, 100.0, 2, [1.0, 100.0]),
        (0.01, 1.0, 3, [0.01, 0.1, 1.0]),
        (1.0, 1000.0, 4, [1.0, 10.0, 100.0, 1000.0]),
        (1.0, 10.0, 3, [1.0, 3.16, 10.0]),  # three significant digits
        (5.0, 5.0, 4, [5.0]),
        (1.0, 100.0, 1, [1.0]),
    ],
)
def test_sweep_ratios_are_evenly_spaced_on_a_log_scale(low, high, count, ratios):
    assert sweeps.sweep_ratios(low, high, count) == ratios


def test_the_weight_ratio_of_settings_and_of_a_run_without_content_weight():
    assert sweeps.weight_ratio(TransferSettings(content_weight=2.0, style_weight=50.0)) == 25.0
    assert sweeps.weight_ratio(TransferSettings(content_weight=0.0, style_weight=50.0)) == math.inf


def _no_weights():
    raise WeightsError("no weights in this test: the runs only need to be queued")


def test_a_sweep_queues_one_titled_tagged_run_per_ratio_as_one_group(gallery_path: Path, shared_data: Path):
    content = inputs.from_path(shared_data / "content" / "chicago.jpg")
    styles = [inputs.from_catalog("udnie")]
    runner = JobRunner(gallery_path, weights_loader=_no_weights)
    try:
        base = PRESETS["Quick preview"].replace(size_px=32, iterations=2)
        group_id = sweeps.start_sweep(runner, base, content, styles, None, [1.0, 100.0])
    finally:
        runner.shutdown()
    with gallery.connect(gallery_path) as db:
        runs = sorted(gallery.list_runs(db, group_id=group_id), key=lambda run: run.style_weight)
        labels = sweeps.sweep_groups(db)
    assert group_id.startswith("sweep-")
    assert [(run.content_weight, run.style_weight, run.size_px) for run in runs] == [(1.0, 1.0, 32), (1.0, 100.0, 32)]
    assert [run.title for run in runs] == [
        "chicago × Udnie (Young American Girl, The Dance) · style/content 1",
        "chicago × Udnie (Young American Girl, The Dance) · style/content 100",
    ]
    assert all(run.tags == (sweeps.SWEEP_TAG,) for run in runs)
    assert list(labels) == [group_id]
    assert labels[group_id].startswith("chicago × Udnie (Young American Girl, The Dance) · 2 runs · ")


def test_runs_outside_a_sweep_are_not_sweeps(gallery_path: Path, shared_data: Path):
    content = inputs.from_path(shared_data / "content" / "chicago.jpg")
    runner = JobRunner(gallery_path, weights_loader=_no_weights)
    try:
        runner.submit(TransferSettings(size_px=32, iterations=2), content, [inputs.from_catalog("udnie")], title="one")
    finally:
        runner.shutdown()
    with gallery.connect(gallery_path) as db:
        assert sweeps.sweep_groups(db) == {}
