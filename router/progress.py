"""Progress of long work: messages and counted steps.

Library functions take ``progress=``: either a plain callable ``f(message: str)`` or a
:class:`Progress`. A plain callable receives the messages and, for a counted step
(:meth:`Progress.steps`), a line at the start, at most one every ``interval`` seconds while it
runs, and one at the end. The CLI builds a :class:`Progress` with :func:`for_cli`: a tqdm bar on
stderr when stderr is a terminal, a line every 10 s otherwise, nothing with ``--quiet``.

::

    prog = as_progress(progress)
    prog("data: 8939 rows")
    with prog.steps("embedding prompts", total=len(texts)) as advance:
        for chunk in chunks:
            ...
            advance(len(chunk))
    with prog.waiting("uploading the model"):   # one blocking call: ticks every 10 s
        upload()
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TypeVar

__all__ = ["Progress", "ProgressLike", "as_progress", "for_cli", "in_chunks", "REPORT_EVERY_S"]

#: Seconds between two progress lines when there is no terminal to draw a bar on.
REPORT_EVERY_S = 10.0

T = TypeVar("T")
R = TypeVar("R")


class Progress:
    """Where progress goes. ``on_message``: receives every line (``None``: nothing is reported);
    ``bar_stream``: a terminal stream to draw tqdm bars on instead of throttled lines."""

    def __init__(self, on_message: Callable[[str], None] | None = None, *, bar_stream: IO[str] | None = None,
                 interval: float = REPORT_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.on_message = on_message
        self.bar_stream = bar_stream
        self.interval = float(interval)
        self.clock = clock

    @property
    def silent(self) -> bool:
        return self.on_message is None

    @contextmanager
    def library_output(self) -> Iterator[None]:
        """Around a library call that prints its own notices to stderr (MLflow's "Successfully
        registered model ..."): dropped when this reporter is silent, kept otherwise."""
        if not self.silent:
            yield
            return
        import io
        from contextlib import redirect_stderr

        with redirect_stderr(io.StringIO()):
            yield

    def __call__(self, message: str) -> None:
        if self.on_message is not None:
            self.on_message(message)

    @contextmanager
    def steps(self, desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A counted step: yields ``advance(n)`` (thread-safe). A bar on a terminal, else a line
        at the start, one at most every ``interval`` seconds, and one at the end."""
        if self.on_message is None:
            yield lambda n=1: None
            return
        if self.bar_stream is not None:
            from tqdm import tqdm

            with tqdm(total=total, desc=desc, file=self.bar_stream, leave=False, dynamic_ncols=True) as bar:
                yield bar.update
            self(f"{desc}: {_count(total, total)} in {bar.format_dict['elapsed']:.1f}s")
            return
        start = self.clock()
        state = {"done": 0, "last": start}
        lock = threading.Lock()  # steps may advance from worker threads
        self(f"{desc}: 0/{total if total is not None else '?'} ...")

        def advance(n: int = 1) -> None:
            with lock:
                state["done"] += n
                now = self.clock()
                due = now - state["last"] >= self.interval
                if due:
                    state["last"] = now
                line = f"{desc}: {_count(state['done'], total)}, {now - start:.0f}s"
            if due:
                self(line)

        yield advance
        self(f"{desc}: {_count(state['done'], total)} in {self.clock() - start:.1f}s")

    @contextmanager
    def waiting(self, desc: str) -> Iterator[None]:
        """A step that cannot be counted (one blocking call: an upload, a download): a ticking
        bar on a terminal, else a line at the start, every ``interval`` seconds, and at the end."""
        if self.on_message is None:
            yield
            return
        start = self.clock()
        done = threading.Event()
        bar = None
        if self.bar_stream is not None:
            from tqdm import tqdm

            bar = tqdm(total=None, desc=desc, file=self.bar_stream, leave=False, bar_format="{desc}: {elapsed}")
        else:
            self(f"{desc} ...")
        period = 1.0 if bar is not None else self.interval

        def tick() -> None:
            while not done.wait(period):
                if bar is not None:
                    bar.refresh()
                else:
                    self(f"{desc} ... {self.clock() - start:.0f}s")

        ticker = threading.Thread(target=tick, name="progress", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
            if bar is not None:
                bar.close()
        self(f"{desc}: done in {self.clock() - start:.1f}s")


def _count(done: int | None, total: int | None) -> str:
    if total:
        return f"{done}/{total} ({100.0 * (done or 0) / total:.0f}%)"
    return str(done)


ProgressLike = Progress | Callable[[str], None] | None


def as_progress(progress: ProgressLike) -> Progress:
    """A :class:`Progress` from what a library caller passed (``None``: report nothing)."""
    if isinstance(progress, Progress):
        return progress
    return Progress(progress)


def for_cli(*, quiet: bool = False, stream: IO[str] | None = None, tty: bool | None = None) -> Progress:
    """The CLI's reporter: lines to ``stream`` (stderr); tqdm bars when it is a terminal."""
    out = stream if stream is not None else sys.stderr
    if quiet:
        return Progress(None)
    is_tty = out.isatty() if tty is None else tty
    return Progress(lambda s: print(s, file=out, flush=True), bar_stream=out if is_tty else None)


def in_chunks(fn: Callable[[Sequence[T]], R], items: Sequence[T], progress: ProgressLike, desc: str,
              size: int = 256) -> list[R]:
    """``fn`` on consecutive chunks of ``items``, reporting each chunk as a counted step."""
    prog = as_progress(progress)
    out: list[R] = []
    with prog.steps(desc, len(items)) as advance:
        for i in range(0, len(items), size):
            chunk = items[i:i + size]
            out.append(fn(chunk))
            advance(len(chunk))
    return out
