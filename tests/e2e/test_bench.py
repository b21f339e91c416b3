"""`clarion bench` once, small: the report's shape and that every eligible recipient was
delivered. A smoke test, not a timed one: speed is for BENCHMARKS.md."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from clarion.harness.measure import quantile

STAGES = ("audience", "personalize", "send", "aggregate", "carrier")


@pytest.mark.timeout(300)
def test_bench_sends_every_eligible_recipient_and_reports_the_figures() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "clarion", "bench", "--recipients", "5000", "--json",
         "--failure-rate", "0"],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["recipients"] == 5000
    assert report["processes"] == 1
    # every eligible recipient delivered, once (the simulator counts what reached handsets;
    # the STOP confirmations are the only other messages)
    assert report["eligible"] > 4500
    assert report["delivered"] == report["eligible"]
    assert report["handset_messages"] == report["delivered"] + report["optouts_recorded"]
    assert report["eligible"] + report["suppressed"] == 5000
    # the STOPs texted mid-campaign were recorded and nobody was sent to after them
    assert report["optouts"] == report["optouts_recorded"] > 0
    assert report["optout_sent_after_1s"] == 0
    assert report["worker_log_errors"] == 0  # nothing failed along the way
    # the figures are there and sane
    assert 0 < report["first_message_s"] <= report["last_message_s"] <= report["duration_s"]
    # a message is stored before it is handed over
    assert 0 < report["first_persisted_s"] <= report["first_message_s"]
    assert report["throughput_mps"] == pytest.approx(
        report["delivered"] / report["duration_s"], rel=0.01
    )
    for stage in STAGES:
        assert 0 < report["stage_p50_ms"][stage] <= report["stage_p99_ms"][stage]
    assert report["peak_rss_mb"] > 20
    # the receipts side's backlog was sampled while the campaign ran (every second)
    backlog = report["receipts_backlog_max"]
    assert set(backlog) == {"bus_unfetched", "bus_in_hand", "simulator_unposted", "samples"}
    assert backlog["samples"] >= 1
    assert all(v >= 0 for v in backlog.values())
    # the network took each message once and heard of each twice (sent, then final)
    network = report["simulator"]
    assert network["accepted"] == report["handset_messages"] + report["undelivered_or_failed"]
    assert network["duplicates"] == 0  # nothing was sent twice
    assert network["receipts_pending"] == 0  # read once the network was quiet
    assert network["receipts_posted"] == 2 * network["accepted"]
    by_process = report["cpu_s_per_1k_by_process"]
    assert set(by_process) == {"workers", "harness", "simulator", "postgres", "nats"}
    assert report["cpu_s_per_1k"] == by_process["workers"] > 0
    # busy cores: CPU seconds per second of the run, within what the machine has (CPU is
    # read a moment after the last receipt, so a little over is allowed)
    assert 0 < report["cores_busy"] <= report["cpus"] * 1.1
    assert report["cores_busy"] == pytest.approx(
        report["throughput_mps"] * report["cpu_s_per_1k_all"] / 1000, rel=0.05, abs=0.02
    )
    assert by_process["postgres"] > 0
    assert by_process["simulator"] > 0
    # the interpreter every Python process of the run was (the test's, through the CLI's)
    assert report["python"]["version"] == platform.python_version()
    assert report["lane_rate_per_s"] > 0
    assert report["lanes"]


def test_quantiles_interpolate_within_a_bucket_as_prometheus_does() -> None:
    # 10 batches ≤ 0.1 s, 90 more ≤ 1 s, none slower
    buckets = {0.1: 10.0, 1.0: 100.0, float("inf"): 100.0}
    assert quantile(buckets, 0.05) == pytest.approx(0.05)
    assert quantile(buckets, 0.5) == pytest.approx(0.1 + 0.9 * 40 / 90)
    assert quantile(buckets, 0.99) == pytest.approx(0.1 + 0.9 * 89 / 90)
    # beyond the last finite bound, the bound is the answer (nothing more is known)
    assert quantile({0.1: 0.0, 1.0: 1.0, float("inf"): 2.0}, 0.99) == 1.0


@pytest.mark.timeout(300)
def test_two_processes_split_the_stages_and_deliver_every_eligible_recipient() -> None:
    # The send side's process hands over; the receipts side's takes the webhooks and folds.
    out = subprocess.run(
        [sys.executable, "-m", "clarion", "bench", "--recipients", "2000", "--workers", "2",
         "--json", "--failure-rate", "0", "--optouts", "5"],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["processes"] == 2
    assert report["stages_per_process"] == [
        "audience,personalize,send",
        "aggregate,carrier,inbound,transactional",
    ]
    # the send side yields the cores to the receipts side (the system's own niceness)
    assert report["nice_per_process"] == [10, 0]
    assert report["delivered"] == report["eligible"] > 1800
    assert report["optouts"] == report["optouts_recorded"] == 5
    assert report["optout_sent_after_1s"] == 0
    assert report["simulator"]["duplicates"] == 0
    assert report["simulator"]["receipts_posted"] == 2 * report["simulator"]["accepted"]
    assert report["worker_log_errors"] == 0
    assert len(report["cpu_s_per_1k_by_worker"]) == 2
    assert all(cpu > 0 for cpu in report["cpu_s_per_1k_by_worker"])
