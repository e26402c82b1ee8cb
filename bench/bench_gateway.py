"""Gateway overhead: the same load client against a FakeUpstream directly, and through the gateway.

``python bench/bench_gateway.py [--levels 1,32,128] [--requests 500,1000,2000]``

Three processes on loopback: a FakeUpstream (its own process, so it does not share the load
client's GIL), the gateway (``router serve``, 1 worker, started in its own process group and
stopped by signalling the group) and this script, whose load client is a minimal asyncio
HTTP/1.1 keep-alive client (one connection per concurrent client, so its own cost is small and
identical in both runs). The gateway calls the upstream through the raw transport
(``RawTransport``: httpx, its own SSE decoder); the router is the cold-start ``Router.default()``.
Per concurrency level and mode (``direct``, pass-through ``gpt-4o-mini``
and ``auto``) it reports latency p50/p99, the latency the gateway adds (gateway minus direct at
the same percentile), requests/s, the gateway process's CPU time per request (utime + stime from
/proc), its RSS, and the usage-log rows written (which must equal the requests sent).
Prints one JSON document with the machine's details.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PROMPTS: list[str] = []  # set by --mix realistic
PROMPTS = [
    "Write a Python function to merge sort an array",
    "Classify this tweet as positive or negative: I love it",
    "Translate 'good morning' to French",
    "What is the capital of France?",
    "Explain why the sky is blue step by step",
    "Summarize this article: the economy grew by two percent last quarter.",
]


# -- processes --------------------------------------------------------------------------------
UPSTREAM_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.support.fake_upstream import FakeUpstream
up = FakeUpstream().start()
print(up.port, flush=True)
sys.stdin.read()
up.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(p: subprocess.Popen, port: int, name: str, *, timeout: float, poll: float) -> int:
    """Wait until ``port`` accepts connections; fail with the process's stderr if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return port
        except OSError:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited: " + p.stderr.read().decode()[-2000:])
            time.sleep(poll)
    raise RuntimeError(f"{name} did not start")


def start_upstream() -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([sys.executable, "-c", UPSTREAM_SCRIPT.format(root=str(ROOT))], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT)
    port = int(p.stdout.readline())
    return p, port


def start_gateway(upstream_port: int, db_url: str, root: Path = ROOT,
                  router: str = "cold-start") -> tuple[subprocess.Popen, int]:
    """``router serve`` from the checkout ``root`` (another checkout measures an older version
    under the same load), routing with ``router`` ($ROUTER_MODEL: ``cold-start`` or a folder)."""
    port = free_port()
    env = dict(os.environ, BENCH_UPSTREAM_KEY="bench", HF_HUB_OFFLINE="1", ROUTER_MODEL=router)
    p = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--base-url", f"http://127.0.0.1:{upstream_port}/v1", "--api-key-env", "BENCH_UPSTREAM_KEY",
         "--usage-db", db_url, "--workers", "1"],
        cwd=root, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return p, wait_for_port(p, port, "gateway", timeout=120, poll=0.05)


LITELLM_CONFIG = """model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{upstream}/v1
      api_key: bench
litellm_settings:
  telemetry: false
  set_verbose: false
"""


def start_litellm(binary: str, upstream_port: int, tmp: str) -> tuple[subprocess.Popen, int]:
    """LiteLLM's proxy (a separate install; logging off, 1 worker) in front of the same upstream."""
    port = free_port()
    cfg = Path(tmp) / "litellm.yaml"
    cfg.write_text(LITELLM_CONFIG.format(upstream=upstream_port))
    env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_TELEMETRY="False", DISABLE_SCHEMA_UPDATE="true",
               LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY="true")  # loopback-only benchmark
    p = subprocess.Popen([binary, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
                          "--num_workers", "1"], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return p, wait_for_port(p, port, "litellm", timeout=120, poll=0.2)


def stop_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)
    except ProcessLookupError:
        pass


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------
class Conn:
    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.first_chunk_at: float | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            await self._open()
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer bench\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:  # the server closed an idle connection: reconnect once
            await self._open()
            self.writer.write(head + body)
            status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        else:  # chunked (streaming answers: the first chunk's arrival is time to first byte)
            parts = []
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                if len(parts) == 1:
                    self.first_chunk_at = time.perf_counter()
                await self.reader.readline()
            data = b"".join(parts)
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.reader = self.writer = None
        return status, headers, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def realistic_prompts(n: int = 300) -> list[str]:
    """Prompts on real lengths (bench/bench_encoder.py's mix: median ~300 characters, a tail past
    2,000), drawn from the project's labelled prompts."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_encoder import length_mix, pool_prompts

    return length_mix(pool_prompts(), n)


async def run_level(port: int, model: str, concurrency: int, n: int, stream: bool = False) -> dict:
    """``n`` chat completions over ``concurrency`` keep-alive connections. With ``stream``, the
    answers are SSE and the first chunk's arrival is timed too (``ttfb_*``)."""
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    bodies = [json.dumps({"model": model, "messages": [{"role": "user", "content": p}], **extra}).encode()
              for p in _PROMPTS or PROMPTS]
    latencies: list[float] = []
    ttfb: list[float] = []
    errors = 0
    counter = iter(range(n))

    async def worker() -> None:
        nonlocal errors
        conn = Conn(port)
        try:
            for i in counter:
                t = time.perf_counter()
                conn.first_chunk_at = None
                status, _, data = await conn.request("POST", "/v1/chat/completions", bodies[i % len(bodies)])
                latencies.append((time.perf_counter() - t) * 1000.0)
                errors += status != 200 or (stream and b"data: [DONE]" not in data)
                if stream and conn.first_chunk_at is not None:
                    ttfb.append((conn.first_chunk_at - t) * 1000.0)
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    wall = time.perf_counter() - t0
    out = {"requests": len(latencies), "errors": errors, "p50_ms": percentile(latencies, 0.50),
           "p99_ms": percentile(latencies, 0.99), "rps": round(len(latencies) / wall, 1), "wall_s": round(wall, 3)}
    if stream and ttfb:
        out["ttfb_p50_ms"], out["ttfb_p99_ms"] = percentile(ttfb, 0.50), percentile(ttfb, 0.99)
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank, as measured before), rounded to µs."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def logged_rows(port: int) -> int:
    conn = Conn(port)
    try:
        status, _, data = await conn.request("GET", "/v1/stats")  # flushes the usage log first
        assert status == 200, data
        return int(json.loads(data)["requests"])
    finally:
        conn.close()


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    from importlib.metadata import version

    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem, "python": platform.python_version(),
            "os": platform.platform(), "fastapi": version("fastapi"), "uvicorn": version("uvicorn"),
            "openai": version("openai"), "httpx": version("httpx")}


async def amain(args: argparse.Namespace) -> dict:
    levels = [int(x) for x in args.levels.split(",")]
    counts = [int(x) for x in args.requests.split(",")]
    if len(counts) != len(levels):
        raise SystemExit("--requests needs one count per level")
    tmp = tempfile.mkdtemp(prefix="bench_gateway_")
    db_url = f"sqlite:///{tmp}/usage.db"
    up_proc, up_port = start_upstream()
    gw_proc = None
    try:
        gw_proc, gw_port = start_gateway(up_port, db_url, Path(args.root), args.router)
        st = args.stream
        for model in ("gpt-4o-mini", "auto"):  # warm up both paths (imports, pools, routing)
            await run_level(gw_port, model, 4, 100, st)
        await run_level(up_port, "gpt-4o-mini", 4, 100, st)
        base_rows = await logged_rows(gw_port)
        results = []
        for conc, n in zip(levels, counts):
            direct = await run_level(up_port, "gpt-4o-mini", conc, n, st)
            row = {"concurrency": conc, "direct": direct}
            for model in ("gpt-4o-mini", "auto"):
                cpu0 = proc_cpu_s(gw_proc.pid)
                res = await run_level(gw_port, model, conc, n, st)
                cpu = proc_cpu_s(gw_proc.pid) - cpu0
                rows = await logged_rows(gw_port)
                if st and "ttfb_p50_ms" in res and "ttfb_p50_ms" in direct:
                    res["added_ttfb_p50_ms"] = round(res["ttfb_p50_ms"] - direct["ttfb_p50_ms"], 3)
                res.update({
                    "added_p50_ms": round(res["p50_ms"] - direct["p50_ms"], 3),
                    "added_p99_ms": round(res["p99_ms"] - direct["p99_ms"], 3),
                    "gateway_cpu_ms_per_request": round(1000.0 * cpu / max(res["requests"], 1), 3),
                    "gateway_rss_mib": round(proc_rss_mib(gw_proc.pid), 1),
                    "log_rows_written": rows - base_rows,
                    "log_rows_equal_requests": rows - base_rows == res["requests"],
                })
                base_rows = rows
                row["pass_through" if model != "auto" else "auto"] = res
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if args.litellm:  # same upstream, same load client, same levels
            stop_group(gw_proc)
            gw_proc = None
            ll_proc, ll_port = start_litellm(args.litellm, up_port, tmp)
            try:
                await run_level(ll_port, "gpt-4o-mini", 4, 100, st)
                for row, (conc, n) in zip(results, zip(levels, counts)):
                    cpu0 = proc_cpu_s(ll_proc.pid)
                    res = await run_level(ll_port, "gpt-4o-mini", conc, n, st)
                    cpu = proc_cpu_s(ll_proc.pid) - cpu0
                    res.update({"added_p50_ms": round(res["p50_ms"] - row["direct"]["p50_ms"], 3),
                                "added_p99_ms": round(res["p99_ms"] - row["direct"]["p99_ms"], 3),
                                "cpu_ms_per_request": round(1000.0 * cpu / max(res["requests"], 1), 3),
                                "rss_mib": round(proc_rss_mib(ll_proc.pid), 1),
                                "router_rps_ratio": round(row["pass_through"]["rps"] / max(res["rps"], 1e-9), 2)})
                    row["litellm_pass_through"] = res
                    print(json.dumps({"concurrency": conc, "litellm": res}), file=sys.stderr, flush=True)
            finally:
                stop_group(ll_proc)
        return {"benchmark": "gateway overhead vs direct FakeUpstream", "workers": 1, "stream": st,
                "router": "Router.default() (cold start)" if args.router == "cold-start" else args.router,
                "checkout": str(args.root), "mix": args.mix, "transport": "RawTransport",
                "pass_through_model": "gpt-4o-mini", "load_client": "asyncio raw HTTP/1.1 keep-alive",
                "results": results, "machine": machine()}
    finally:
        if gw_proc is not None:
            stop_group(gw_proc)
        try:
            up_proc.stdin.close()
        except OSError:
            pass
        stop_group(up_proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="1,32,128")
    ap.add_argument("--requests", default="500,1000,2000")
    ap.add_argument("--litellm", help="path to a `litellm` proxy executable to measure on the same upstream")
    ap.add_argument("--stream", action="store_true", help="SSE answers; also time the first chunk (TTFB)")
    ap.add_argument("--mix", choices=["realistic", "short"], default="realistic",
                    help="prompt lengths: a real mix (default) or six short prompts")
    ap.add_argument("--root", default=str(ROOT), help="checkout whose `router serve` is measured (default: this one)")
    ap.add_argument("--router", default="cold-start", help="$ROUTER_MODEL of the gateway: cold-start or a folder")
    args = ap.parse_args()
    if args.mix == "realistic":
        _PROMPTS.extend(realistic_prompts())
    print(json.dumps(asyncio.run(amain(args)), indent=2))


if __name__ == "__main__":
    main()
