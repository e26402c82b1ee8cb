"""A small catalog and a fully populated UsageRecord, shared by the usage-store tests."""

import threading

from router.serving.usage.store import UsageRecord, hash_prompt

CATALOG = {
    "defaults": {"provider": {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "KEY"}},
    "models": {
        "cheap": {"pricing": {"input_per_1m": 0.1, "output_per_1m": 0.2}, "context_window": 8000,
                  "max_output_tokens": 1000, "quality_priors": {"default": 0.6}},
        "dear": {"pricing": {"input_per_1m": 10, "output_per_1m": 30}, "context_window": 8000,
                 "max_output_tokens": 1000, "quality_priors": {"default": 0.9}},
    },
}


def make_record(request_id="r1", **kw) -> UsageRecord:
    """A record with every field set (a fallback chain, escalation, streaming); ``kw`` overrides."""
    prompt = kw.pop("prompt", "What is 2 + 2?")
    base = dict(
        request_id=request_id, created_at=1_700_000_000.123456, task="math", model="dear",
        requested_model="auto:budget", tier="budget", predicted_quality=0.8125, prompt_tokens=12,
        completion_tokens=34, cost_usd=0.00123, latency_ms=456.75, status="ok", error=None,
        chain=[{"model": "cheap", "status": "error", "reason": "timeout", "latency_ms": 100.5},
               {"model": "dear", "status": "ok", "reason": "fallback", "latency_ms": 356.25}],
        escalated=True, stream=True, prompt=prompt, prompt_hash=hash_prompt(prompt) if prompt else "",
        client="tests",
    )
    base.update(kw)
    return UsageRecord(**base)


def log_from_threads(store, threads: int = 8, per_thread: int = 50) -> set[str]:
    """Log ``threads`` x ``per_thread`` records into ``store`` from that many threads at once;
    returns the request ids that must come back."""
    def worker(t):
        for i in range(per_thread):
            store.log(make_record(f"t{t}-{i}", created_at=1000.0 + t * per_thread + i))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return {f"t{t}-{i}" for t in range(threads) for i in range(per_thread)}
