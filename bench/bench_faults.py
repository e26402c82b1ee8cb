"""Fault matrix: a real ``router serve`` under 32 concurrent clients while things break.

``python bench/bench_faults.py [--clients 32] [--only locked_db,full_db] [--duration-scale 1.0]``

Each scenario starts its own gateway (``router serve``, 1 worker, the cold-start
``Router.default()`` via ``--router cold-start``, ``--usage-journal`` on the regular disk, only
127.0.0.1) in front of a FakeUpstream (tests/support/fake_upstream.py, in this process), runs
32 keep-alive clients for a fixed time (every loop is bounded: a scenario stops issuing requests
after its duration and every request has a client-side timeout), reads ``/health``, stops the
gateway (SIGTERM: the usage log drains and replays its journal) and then counts, in the SQLite
file itself, the rows of every ``x-router-request-id`` the clients received.

Scenarios: ``healthy`` (reference), ``hung_upstream`` (every upstream call sleeps 30 s; gateway
``--timeout 1``, since the overall deadline is another change), ``refused`` (the upstream port is
closed), ``mixed_30`` (30% of upstream calls fail: 500/503/429, dropped connections, malformed
bodies, 3 s stalls), ``locked_db`` (another connection holds ``BEGIN EXCLUSIVE`` on the usage
database for 12 s), ``full_db`` (the database lives on a 32 MiB tmpfs that a filler file fills for
8 s; needs root to mount it, else the scenario is skipped and says so) and ``big_prompts`` (2 of
the clients send 990 KB prompts). Reports per scenario: requests, statuses, latency p50/p99 of
the normal clients, log rows, journalled / replayed / lost / dropped (the store's counters from
``/health``), whether ``/health`` said degraded during the fault, and ``rows_lost`` (ids answered
but not in the log after shutdown: must be 0). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gateway as bg  # noqa: E402  (the process and HTTP helpers)

ROOT = bg.ROOT
sys.path.insert(0, str(ROOT))
from tests.support.fake_upstream import FakeUpstream  # noqa: E402

PROMPTS = bg.PROMPTS
BIG = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "lorem " * 165_000}]}).encode()


def start_gateway(base_url: str, db: Path, journal: Path, log: Path, timeout: float) -> tuple[subprocess.Popen, int]:
    port = bg.free_port()
    env = dict(os.environ, BENCH_UPSTREAM_KEY="bench", HF_HUB_OFFLINE="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--host", "127.0.0.1", "--port", str(port), "--router", "cold-start",
         "--base-url", base_url, "--api-key-env", "BENCH_UPSTREAM_KEY", "--usage-db", f"sqlite:///{db}",
         "--usage-journal", str(journal), "--timeout", str(timeout), "--workers", "1"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with bg.socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return p, port
        except OSError:
            if p.poll() is not None:
                raise RuntimeError("gateway exited: " + log.read_text()[-2000:])
            time.sleep(0.1)
    raise RuntimeError("gateway did not start")


def stop_gateway(p: subprocess.Popen) -> None:
    """SIGTERM, and time to drain the usage log (its close waits up to 30 s); SIGKILL after 60 s."""
    try:
        os.killpg(p.pid, bg.signal.SIGTERM)
        p.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, bg.signal.SIGKILL)
        p.wait(5)
    except ProcessLookupError:
        pass


async def get_json(port: int, path: str) -> dict:
    conn = bg.Conn(port)
    try:
        status, _, data = await asyncio.wait_for(conn.request("GET", path), 30)
        return json.loads(data)
    finally:
        conn.close()


async def load(port: int, clients: int, duration: float, big_clients: int = 0) -> dict:
    bodies = [json.dumps({"model": "auto", "messages": [{"role": "user", "content": p}]}).encode() for p in PROMPTS]
    statuses: Counter[str] = Counter()
    ids: list[str] = []
    lat: list[float] = []
    big_statuses: Counter[str] = Counter()
    end = time.monotonic() + duration

    async def client(k: int) -> None:
        conn, i = bg.Conn(port), k
        big = k < big_clients
        try:
            while time.monotonic() < end:
                t = time.perf_counter()
                try:
                    status, headers, _ = await asyncio.wait_for(
                        conn.request("POST", "/v1/chat/completions", BIG if big else bodies[i % len(bodies)]), 60)
                except (asyncio.TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                    (big_statuses if big else statuses)[f"client:{type(exc).__name__}"] += 1
                    conn.close()
                    conn = bg.Conn(port)
                    continue
                (big_statuses if big else statuses)[str(status)] += 1
                if not big:
                    lat.append((time.perf_counter() - t) * 1000.0)
                if headers.get("x-router-request-id"):
                    ids.append(headers["x-router-request-id"])
                i += 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[client(k) for k in range(clients)])
    wall = time.perf_counter() - t0
    out = {"requests": sum(statuses.values()) + sum(big_statuses.values()), "statuses": dict(statuses),
           "p50_ms": bg.percentile(lat, 0.5) if lat else None, "p99_ms": bg.percentile(lat, 0.99) if lat else None,
           "rps": round(sum(statuses.values()) / wall, 1), "wall_s": round(wall, 1), "ids": ids}
    if big_clients:
        out["big_prompt_statuses"] = dict(big_statuses)
    return out


def rows_in(db: Path, ids: list[str]) -> tuple[int, int]:
    """(rows in the table, answered ids missing from it)."""
    con = sqlite3.connect(db)
    try:
        have = {r for (r,) in con.execute("SELECT request_id FROM requests")}
    finally:
        con.close()
    return len(have), len(set(ids) - have)


def mixed_faults(up: FakeUpstream, n: int, rng: random.Random) -> None:
    kinds = [("status", {"status": 500}), ("status", {"status": 503}), ("status", {"status": 429}),
             ("drop", {}), ("malformed", {}), ("delay", {"seconds": 3.0})]
    for _ in range(n):
        if rng.random() < 0.3:
            kind, params = kinds[rng.randrange(len(kinds))]
            up.add_fault(kind, **params)
        else:
            up.add_fault("delay", seconds=0.0)  # no fault: keeps the FIFO's 70/30 mix


def hold_lock(db: Path, start: float, seconds: float, stop: threading.Event) -> None:
    if stop.wait(start):
        return
    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    con.execute("BEGIN EXCLUSIVE")
    stop.wait(seconds)
    con.execute("ROLLBACK")
    con.close()


def fill_disk(mount: Path, start: float, seconds: float, stop: threading.Event) -> None:
    if stop.wait(start):
        return
    filler = mount / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:  # ENOSPC: the disk is full
            pass
    stop.wait(seconds)
    filler.unlink()


async def scenario(name: str, args: argparse.Namespace, tmp: Path) -> dict:
    work = tmp / name
    work.mkdir()
    db, journal, log = work / "db" / "usage.db", work / "journal", work / "gateway.log"
    db.parent.mkdir()
    if name != "full_db":
        return await _scenario(name, args, db, journal, log)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(db.parent)], capture_output=True)
    if r.returncode != 0:
        return {"scenario": name, "skipped": f"cannot mount a tmpfs here: {r.stderr.decode().strip()}"}
    try:
        return await _scenario(name, args, db, journal, log)
    finally:
        subprocess.run(["umount", str(db.parent)], check=False)


async def _scenario(name: str, args: argparse.Namespace, db: Path, journal: Path, log: Path) -> dict:
    s = args.duration_scale
    up = FakeUpstream().start()
    base_url = up.base_url
    if name == "refused":
        base_url = f"http://127.0.0.1:{bg.free_port()}/v1"
    timeout = 1.0 if name == "hung_upstream" else 10.0
    if name == "hung_upstream":
        up.add_fault("delay", times=100_000, seconds=30.0)
    if name == "mixed_30":
        mixed_faults(up, 40_000, random.Random(0))
    gw, port = None, 0
    stop, helper = threading.Event(), None
    try:
        gw, port = start_gateway(base_url, db, journal, log, timeout)
        await load(port, 4, 1.0)  # warm up (its rows are counted in the table, not in the ids)
        duration = (25.0 if name in ("locked_db", "full_db") else 12.0) * s
        if name == "locked_db":
            helper = threading.Thread(target=hold_lock, args=(db, 2.0 * s, 12.0, stop))
        if name == "full_db":
            helper = threading.Thread(target=fill_disk, args=(db.parent, 2.0 * s, 8.0 * s, stop))
        degraded: list[str] = []

        async def watch() -> None:
            t_end = time.monotonic() + duration
            while time.monotonic() < t_end:
                h = await get_json(port, "/health")
                if h["status"] != "ok":
                    degraded.extend(r for r in h["reasons"] if r not in degraded)
                await asyncio.sleep(1.0)

        if helper is not None:
            helper.start()
        res, _ = await asyncio.gather(load(port, args.clients, duration, 2 if name == "big_prompts" else 0), watch())
        if helper is not None:
            helper.join(60)
        t = time.monotonic()
        health = await get_json(port, "/health")
        while health["usage"]["journalled"] > health["usage"]["replayed"] and time.monotonic() - t < 30:
            await asyncio.sleep(0.5)  # the replay runs every few seconds
            health = await get_json(port, "/health")
    finally:
        stop.set()
        if gw is not None:
            stop_gateway(gw)
        up.stop()
    ids = res.pop("ids")
    rows, missing_in_db = rows_in(db, ids)
    left = sum(1 for p in journal.glob("*.jsonl") for x in p.read_text().splitlines() if x.strip())
    replayed_on_restart = 0
    if left:  # a restart adopts the journal the gateway left and replays it
        from router.serving.usage.store import UsageStore

        store = UsageStore(f"sqlite:///{db}", journal=journal)
        t = time.monotonic()
        while store.replayed < left and time.monotonic() - t < 60:
            time.sleep(0.2)
        replayed_on_restart = store.replayed
        store.close()
    missing = rows_in(db, ids)[1]
    warnings = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("usage log:")]
    return {"scenario": name, **res, "answered_ids": len(ids), "log_rows": rows, "not_in_db": missing_in_db,
            "rows_lost": missing, "journal_rows_left_at_exit": left, "replayed_on_restart": replayed_on_restart, "usage_counters": health["usage"], "health_after": health["status"],
            "degraded_reasons_seen": degraded[:4], "usage_warnings_logged": len(warnings),
            "first_warning": warnings[0][:300] if warnings else None,
            **({"gateway_log_tail": log.read_text(errors="replace")[-1500:]} if missing else {})}


async def amain(args: argparse.Namespace) -> dict:
    names = args.only.split(",") if args.only else ["healthy", "hung_upstream", "refused", "mixed_30", "locked_db",
                                                    "full_db", "big_prompts"]
    out = []
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        for n in names:
            r = await scenario(n, args, Path(tmp))
            print(json.dumps(r), file=sys.stderr, flush=True)
            out.append(r)
    return {"benchmark": "fault matrix", "router": "Router.default() (cold start, --router cold-start)",
            "workers": 1, "clients": args.clients, "transport": "RawTransport", "results": out,
            "machine": bg.machine()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--duration-scale", type=float, default=1.0, help="scale every scenario's duration")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(amain(args)), indent=2))


if __name__ == "__main__":
    main()
