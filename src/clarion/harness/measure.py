"""Measuring a benchmark's processes: CPU and memory from the operating system (psutil), batch
latencies from the workers' own Prometheus histograms."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats.errors
import psutil
from prometheus_client.parser import text_string_to_metric_families

from clarion.bus.jetstream import Bus
from clarion.runtime.stages import STAGE_HOPS, STAGES


@dataclass
class Processes:
    """The processes a benchmark measures."""

    workers: list[psutil.Process]
    harness: psutil.Process
    sim: psutil.Process
    infra: list[psutil.Process]  # postgres (postmaster; backends are its children), nats

    @classmethod
    def find(cls, workers: Sequence[int], sim: int, root: Path) -> Processes:
        """The workers and simulator by pid; Postgres and NATS as the servers whose command
        line names `root`, their data directory."""
        infra = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if str(root) in cmd and ("postgres" in cmd or "nats-server" in cmd):
                infra.append(p)
        return cls(
            [psutil.Process(w) for w in workers], psutil.Process(), psutil.Process(sim), infra
        )

    def infra_tree(self) -> list[psutil.Process]:
        out: list[psutil.Process] = []
        for p in self.infra:
            out.append(p)
            with contextlib.suppress(psutil.Error):
                out.extend(p.children(recursive=True))
        return out

    def everyone(self) -> list[psutil.Process]:
        return [*self.workers, self.harness, self.sim, *self.infra_tree()]

    def roles(self) -> dict[str, list[int]]:
        """Pids by role: workers, harness, simulator, postgres, nats."""
        tree = self.infra_tree()
        nats = [p.pid for p in tree if "nats" in _name(p)]
        return {
            "workers": [w.pid for w in self.workers],
            "harness": [self.harness.pid],
            "simulator": [self.sim.pid],
            "postgres": [p.pid for p in tree if p.pid not in nats],
            "nats": nats,
        }


def rss(procs: Sequence[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def cpu_times(procs: Sequence[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user + system) each process has used so far, by pid."""
    out: dict[int, float] = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def cpu_used(before: Mapping[int, float], after: Mapping[int, float], pids: Sequence[int]) -> float:
    """CPU seconds these processes used between the two readings (a process that started in
    between counts whole)."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in pids if pid in after)


def _name(p: psutil.Process) -> str:
    try:
        return str(p.name())
    except psutil.Error:
        return ""


@dataclass
class Sampler:
    """Peak resident memory of the workers (summed) and of the harness, sampled every 0.2 s."""

    procs: Processes
    peak: int = 0
    harness_peak: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    def sample(self) -> None:
        self.peak = max(self.peak, rss(self.procs.workers))
        self.harness_peak = max(self.harness_peak, rss([self.procs.harness]))


@dataclass
class Backlog:
    """How far the receipts side is behind, sampled every second: the receipts hop's bus
    messages not yet fetched (`bus_unfetched`) and fetched but not yet acknowledged (held,
    or being folded: `bus_in_hand`), and the receipts the simulator has due but has not
    posted yet (`simulator_unposted`). Their peaks show a side that fell behind, where the
    run's throughput alone cannot (BENCHMARKS.md's history, fourteenth pass)."""

    bus: Bus
    sim_url: str
    samples: int = 0
    peak: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("bus_unfetched", "bus_in_hand", "simulator_unposted"), 0
        )
    )

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while not stop.is_set():
                # a sample missed (a slow answer while the machine is saturated) is no error
                with contextlib.suppress(httpx.HTTPError, nats.errors.Error, TimeoutError):
                    await self.sample(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def sample(self, client: httpx.AsyncClient) -> None:
        info = await self.bus.js.consumer_info(self.bus.stream, self.bus.durable("receipts"))
        stats = (await client.get(f"{self.sim_url}/stats/backlog")).json()
        for key, value in (
            ("bus_unfetched", info.num_pending),
            ("bus_in_hand", info.num_ack_pending),
            ("simulator_unposted", stats.get("receipts_pending")),
        ):
            self.peak[key] = max(self.peak[key], int(value or 0))
        self.samples += 1

    def report(self) -> dict[str, int]:
        return {**self.peak, "samples": self.samples}


async def stage_latencies(ports: Sequence[int]) -> dict[str, tuple[float, float]]:
    """p50 and p99 of each stage's per-batch time, from every worker's histogram (merged
    bucket counts; interpolated within a bucket, as Prometheus' histogram_quantile does)."""
    buckets: dict[str, dict[float, float]] = {}
    stage_of = {hop: stage for stage, hop in STAGE_HOPS.items()}
    async with httpx.AsyncClient() as client:
        for port in ports:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
            for family in text_string_to_metric_families(text):
                if family.name != "clarion_stage_batch_seconds":
                    continue
                for s in family.samples:
                    stage = stage_of.get(s.labels["stage"])  # labelled by the hop it reads
                    if stage is not None and s.name.endswith("_bucket"):
                        per = buckets.setdefault(stage, {})
                        le = float(s.labels["le"])
                        per[le] = per.get(le, 0.0) + s.value
    return {
        stage: (round(quantile(b, 0.5) * 1000, 1), round(quantile(b, 0.99) * 1000, 1))
        for stage, b in sorted(buckets.items(), key=lambda kv: STAGES.index(kv[0]))
        if b.get(float("inf"), 0) > 0
    }


def quantile(cumulative: dict[float, float], q: float) -> float:
    """The q-quantile of a cumulative histogram {upper bound: count ≤ bound}."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = cumulative[le]
        if count >= rank:
            if le == float("inf"):
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower
