"""Champion reload in a server: SIGHUP runs a check on a thread; the Reloader checks at start,
periodically, and stops cleanly."""

import os
import signal
import threading

import pytest

from router.serving.reload import ChampionWatcher, Reloader, on_sighup


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_runs_the_check_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGHUP)
    hit = threading.Event()
    restore = on_sighup(hit.set)
    try:
        assert signal.getsignal(signal.SIGHUP) is not before
        os.kill(os.getpid(), signal.SIGHUP)
        assert hit.wait(10)
    finally:
        restore()
    assert signal.getsignal(signal.SIGHUP) == before


def test_sighup_off_the_main_thread_is_a_no_op():
    out = []
    t = threading.Thread(target=lambda: out.append(on_sighup(lambda: None)))
    t.start()
    t.join()
    before = signal.getsignal(signal.SIGHUP) if hasattr(signal, "SIGHUP") else None
    out[0]()  # restoring does nothing either
    assert (signal.getsignal(signal.SIGHUP) if hasattr(signal, "SIGHUP") else None) == before


def test_the_reloader_checks_at_start_and_stops():
    versions = iter(["v1", "v2"] + ["v2"] * 1000)
    swapped = []
    w = ChampionWatcher("models:/r@champion", lambda r, v: swapped.append(v), resolve=lambda u: next(versions),
                        load=lambda u: "router", interval=3600)
    r = Reloader(w, periodic=False).start()
    assert r.ready(10) and swapped == ["v2"] and w.current == "v2"
    assert w._thread is None  # not periodic: no thread
    r.stop()
    r2 = Reloader(w).start()
    assert r2.ready(10) and w._thread is not None
    r2.stop()
    assert w._thread is None and swapped == ["v2"]
