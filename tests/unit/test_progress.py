import io
import threading

from router.progress import Progress, as_progress, for_cli, in_chunks


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_counted_step_reports_start_every_interval_and_end():
    lines, clock = [], Clock()
    prog = Progress(lines.append, interval=10.0, clock=clock)
    with prog.steps("embedding", 100) as advance:
        for _ in range(10):
            clock.t += 3
            advance(10)
    assert lines[0] == "embedding: 0/100 ..."
    assert lines[1:-1] == ["embedding: 40/100 (40%), 12s", "embedding: 80/100 (80%), 24s"]
    assert lines[-1] == "embedding: 100/100 (100%) in 30.0s"


def test_a_plain_callable_gets_throttled_lines_and_none_reports_nothing():
    lines = []
    prog = as_progress(lines.append)
    prog("hello")
    with prog.steps("x", 2) as advance:
        advance(2)
    assert lines[0] == "hello" and lines[-1].startswith("x: 2/2 (100%)")
    silent = as_progress(None)
    assert silent.silent
    with silent.steps("x", 2) as advance:
        advance(2)
    assert as_progress(prog) is prog


def test_advance_is_thread_safe():
    lines = []
    prog = Progress(lines.append, interval=1e9)
    with prog.steps("folds", 800) as advance:
        threads = [threading.Thread(target=lambda: [advance(1) for _ in range(100)]) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert lines[-1].startswith("folds: 800/800 (100%)")


def test_waiting_ticks_while_a_blocking_call_runs():
    lines = []
    gate = threading.Event()
    prog = Progress(lambda s: (lines.append(s), gate.set() if "..." in s and len(lines) > 1 else None),
                    interval=0.01)
    with prog.waiting("uploading"):
        assert gate.wait(5)  # at least one tick arrived while we were inside
    assert lines[0] == "uploading ..." and any(line.startswith("uploading ... ") for line in lines[1:])
    assert lines[-1].startswith("uploading: done in")


def test_cli_reporter_bar_on_a_terminal_lines_otherwise_nothing_when_quiet():
    out = io.StringIO()
    prog = for_cli(stream=out, tty=False)
    with prog.steps("embedding", 3) as advance:
        advance(3)
    assert "embedding: 0/3 ..." in out.getvalue() and "embedding: 3/3 (100%)" in out.getvalue()
    bar = io.StringIO()
    with for_cli(stream=bar, tty=True).steps("embedding", 3) as advance:
        advance(3)
    assert "\r" in bar.getvalue() and "\r" not in out.getvalue()  # a redrawn bar vs plain lines
    assert "embedding: 3/3 (100%)" in bar.getvalue()
    quiet = io.StringIO()
    q = for_cli(quiet=True, stream=quiet)
    q("a notice")
    with q.steps("embedding", 3) as advance:
        advance(3)
    assert quiet.getvalue() == ""


def test_in_chunks_calls_on_consecutive_chunks_and_reports_each():
    lines = []
    assert in_chunks(sum, list(range(10)), Progress(lines.append, interval=0.0), "sum", size=4) == [6, 22, 17]
    assert [line.split(",")[0] for line in lines[1:-1]] == ["sum: 4/10 (40%)", "sum: 8/10 (80%)", "sum: 10/10 (100%)"]
