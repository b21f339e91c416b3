"""Where does a demo campaign wait? Samples every hop's backlog (JetStream consumer pending +
unacked) once a second while `clarion demo` runs with a kept data dir.

    .venv/bin/python bench/stage_backlog.py --recipients 100000
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
from pathlib import Path

import nats

from clarion.bus.jetstream import HOPS
from clarion.harness.demo import run_demo


async def sample(root: Path, done: asyncio.Event) -> None:
    conf = root / "nats" / "nats.conf"
    while not conf.exists():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    port = re.search(r"listen: 127\.0\.0\.1:(\d+)", conf.read_text())
    assert port is not None
    nc = await nats.connect(f"nats://127.0.0.1:{port.group(1)}")
    js = nc.jetstream()
    print("t_s  " + " ".join(f"{h:>9}" for h in HOPS))
    t = 0
    while not done.is_set():
        row = []
        for hop in HOPS:
            try:
                streams = await js.streams_info()
                name = next(s.config.name for s in streams if s.config.name.startswith("DEMO"))
                info = await js.consumer_info(
                    name, f"{name.removesuffix('_PIPELINE').lower()}_{hop}"
                )
                row.append(f"{info.num_pending + info.num_ack_pending:>9}")
            except Exception:
                row.append(f"{'-':>9}")
        print(f"{t:>3}  " + " ".join(row), flush=True)
        t += 1
        await asyncio.sleep(1.0)
    await nc.close()


async def main(recipients: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="clarion-backlog-"))
    done = asyncio.Event()
    sampler = asyncio.create_task(sample(root, done))
    try:
        report = await run_demo(recipients, as_json=True, data_dir=root)
    finally:
        done.set()
        await sampler
        shutil.rmtree(root, ignore_errors=True)
    print({k: report[k] for k in ("delivered", "duration_s", "throughput_mps")})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().recipients))
