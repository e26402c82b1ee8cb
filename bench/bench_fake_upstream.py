"""Timing of the test double itself (tests/support/fake_upstream.py), kept out of the tests:
sequential latency on a keep-alive connection (a Nagle/delayed-ACK stall would be ~40 ms a
request), 30 delayed requests served in parallel, and stop() with a keep-alive connection open.

    python bench/bench_fake_upstream.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai  # noqa: E402

from tests.support.fake_upstream import FakeUpstream  # noqa: E402

MSGS = [{"role": "user", "content": "hi"}]


def main() -> int:
    out: dict[str, float] = {}
    with FakeUpstream() as up, openai.OpenAI(base_url=up.base_url, api_key="t", max_retries=0, timeout=10) as c:
        c.chat.completions.create(model="m", messages=MSGS)
        t = time.perf_counter()
        for _ in range(200):
            c.chat.completions.create(model="m", messages=MSGS)
        out["keep_alive_ms_per_request"] = round((time.perf_counter() - t) / 200 * 1000, 2)
        up.add_fault("delay", seconds=0.2, times=30)
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=30) as pool:
            list(pool.map(lambda i: c.chat.completions.create(model=f"m{i}", messages=MSGS), range(30)))
        out["thirty_parallel_0.2s_requests_s"] = round(time.perf_counter() - t, 2)
    up = FakeUpstream().start()
    with openai.OpenAI(base_url=up.base_url, api_key="t", max_retries=0, timeout=5) as c:
        c.chat.completions.create(model="m", messages=MSGS)
        t = time.perf_counter()
        up.stop()
        out["stop_with_open_connection_s"] = round(time.perf_counter() - t, 3)
    out["machine"] = f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
