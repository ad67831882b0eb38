"""Environment snapshot, weight placement, the background sampler and run-log bookkeeping (no Qt)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from llmviz.core.environment import (
    BackgroundSampler,
    RunRecord,
    cuda_memory,
    environment_report,
    process_rss,
    run_log_frame,
    snapshot,
    weight_placement,
)
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec


@pytest.fixture(scope="module")
def tiny_session(tiny_models):
    session = Session()
    session.load(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    return session


def test_snapshot_reports_versions_devices_and_placement(tiny_session):
    snap = snapshot(tiny_session, None)
    versions = dict(snap.versions)
    assert versions["torch"] == torch.__version__
    assert versions["CUDA available"] == str(torch.cuda.is_available())
    assert snap.cuda_available == torch.cuda.is_available()
    assert len(snap.devices) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    placement = snap.placement
    info = tiny_session.loaded.info
    assert placement.title == info.title and placement.device == "cpu" and placement.device_map is None
    (device, params, nbytes, dtypes), = placement.by_device
    assert device == "cpu" and dtypes == "float32"
    assert params == info.num_parameters  # counted from the tensors, tied weights once
    assert nbytes >= params * 4


def test_placement_counts_each_device_separately(tiny_models):
    """A model split over two 'devices' (cpu and meta here; cuda:0/cuda:1 on a GPU box) is counted per device."""
    from llmviz.core.models import load_model

    loaded = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))  # its own copy: this test moves a layer
    moved = loaded.model.model.layers[-1].to("meta")
    placement = weight_placement(loaded.model, "split", "cpu, meta", {"model.layers.2": "meta"})
    devices = {row[0]: row[1] for row in placement.by_device}
    assert set(devices) == {"cpu", "meta"}
    assert devices["meta"] == sum(p.numel() for p in moved.parameters())
    assert sum(devices.values()) == loaded.info.num_parameters
    assert placement.device_map == {"model.layers.2": "meta"}


def test_snapshot_without_a_model():
    assert snapshot(Session(), None).placement is None


def test_cuda_memory_reads_nothing_until_cuda_is_used():
    readings = cuda_memory()
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        assert readings == ()
    else:
        assert len(readings) == torch.cuda.device_count() and all(r.reserved >= r.allocated for r in readings)


def test_environment_report_keeps_the_notebook_fields():
    report = environment_report()
    for key in ("Python", "torch", "transformers", "bitsandbytes", "CUDA available"):
        assert report[key]


def test_sampler_runs_off_the_calling_thread_and_stops():
    callers = set()

    def sample() -> int:
        callers.add(threading.get_ident())
        return process_rss()

    sampler = BackgroundSampler(sample, interval_s=0.01, keep=100)
    sampler.start()
    deadline = time.perf_counter() + 10
    taken: list = []
    while len(taken) < 3 and time.perf_counter() < deadline:
        taken += sampler.take()
        time.sleep(0.01)
    assert sampler.stop() and not sampler.running
    assert len(taken) >= 3
    times = [t for t, _ in taken]
    assert times == sorted(times) and all(v > 10_000_000 for _, v in taken)
    assert threading.get_ident() not in callers


def test_sampler_keeps_only_the_newest():
    sampler = BackgroundSampler(lambda: 1, interval_s=0.001, keep=5)
    sampler.start()
    time.sleep(0.2)
    sampler.stop()
    assert len(sampler.take()) == 5


def test_failing_sampler_stops_with_the_reason():
    def broken() -> int:
        raise RuntimeError("driver went away")

    sampler = BackgroundSampler(broken, interval_s=0.01)
    sampler.start()
    sampler._thread.join(5)
    assert not sampler.running and sampler.error == "RuntimeError: driver went away"
    assert sampler.take() == []


def test_run_record_phases_transfer_and_draws():
    record = RunRecord(7, "run", "Running the model", started_at=100.0)
    timings = {"tokenize_s": 0.002, "forward_s": 0.5, "capture_s": 0.03, "total_s": 0.532}
    record.finish("ok", elapsed_s=0.6, transfer_s=0.01, received_at=100.61, timings=timings)
    assert record.phases == pytest.approx({"tokenize": 0.002, "forward": 0.5, "capture": 0.03, "other worker": 0.068})
    assert record.transfer_s == pytest.approx(0.01)
    assert record.add_draw("attention", busy_at=100.612, ready_at=100.7)
    assert not record.add_draw("attention", busy_at=101.0, ready_at=102.0)  # a later redraw is not this run's
    assert record.add_draw("tokens", busy_at=100.615, ready_at=100.65)
    assert record.draws == pytest.approx({"attention": 0.088, "tokens": 0.035})
    assert record.draw_s == pytest.approx(0.088)
    assert [name for name, _ in record.segments()] == ["tokenize", "forward", "capture", "other worker", "transfer", "draw"]
    assert record.total_s == pytest.approx(0.6 + 0.01 + 0.088)


def test_load_record_and_table():
    load = RunRecord(1, "load", "Loading", started_at=0.0, model="tiny")
    load.finish("ok", elapsed_s=4.0, transfer_s=0.002, received_at=4.002, load_s=3.5)
    assert load.phases == pytest.approx({"load": 3.5, "other worker": 0.5})
    failed = RunRecord(2, "run", "Running", started_at=5.0)
    failed.finish("failed", elapsed_s=0.1, transfer_s=0.0005, received_at=5.1005)
    frame = run_log_frame([load, failed])
    assert list(frame["#"]) == [1, 2] and list(frame["status"]) == ["ok", "failed"]
    assert frame.loc[0, "load_ms"] == 3500.0 and frame.loc[0, "transfer_ms"] == pytest.approx(2.0)
    assert frame.loc[1, "other_worker_ms"] == 100.0
    assert frame["forward_ms"].isna().all()
