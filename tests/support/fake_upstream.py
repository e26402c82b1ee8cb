"""A real OpenAI-protocol upstream for tests: a stdlib HTTP server on 127.0.0.1.

The ``openai`` SDK (3.x, built on httpx2) is not intercepted by httpx mocking libraries, so tests
point it at this server instead::

    with FakeUpstream() as up:
        client = openai.OpenAI(base_url=up.base_url, api_key="test", max_retries=0)
        up.add_fault("status", status=429, retry_after=2)
        ...

Endpoints: ``POST /v1/chat/completions`` (plain and ``stream: true`` SSE) and ``GET /v1/models``.
Replies are deterministic: ``f"echo[{model}]: {last user message text}"`` unless a scripted reply
is set (``set_reply`` per model, or a one-shot ``add_fault("reply", content=...)``).

Faults (``add_fault``) form a FIFO queue; each chat request consumes the first queued fault that
applies to its model (``model=None`` applies to every model). Kinds:

* ``"delay"`` (``seconds``): sleep, then answer normally;
* ``"status"`` (``status``, optional ``message``, ``type``, ``code``, ``retry_after``): an HTTP
  error with an OpenAI-style error body, and a ``Retry-After`` header when ``retry_after`` is set;
* ``"malformed"``: 200 with a body that is not valid JSON;
* ``"drop"``: close the connection without answering;
* ``"drop_mid_stream"``: streaming: two content chunks, then an abrupt close (no ``[DONE]``);
  non-streaming: headers only, then an abrupt close;
* ``"error_event"`` (optional ``message``, ``chunks``): streaming: a 200 whose first event (or
  the one after ``chunks`` content chunks) is ``data: {"error": {...}}`` (a provider failing after
  it accepted the stream); non-streaming: a 500;
* ``"reply"`` (``content``): answer normally with the given content;
* ``"hang"`` (``seconds``, default 30; ``chunks``, default 0): accept the request and send nothing
  (for a stream with ``chunks``: that many content chunks first, then nothing) until
  :meth:`FakeUpstream.release`, ``seconds`` or the caller closes the connection; then answer
  normally (released or timed out). Closed connections are counted in ``hung_up``.
"""

from __future__ import annotations

import copy
import json
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeUpstream", "Fault", "FAULT_KINDS", "DEFAULT_MODELS"]

FAULT_KINDS = frozenset({"delay", "status", "malformed", "drop", "drop_mid_stream", "error_event", "reply", "hang"})
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o")

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
}


@dataclass
class Fault:
    kind: str
    model: str | None = None
    times: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def applies_to(self, model: str | None) -> bool:
        return self.model is None or self.model == model


class _Dropped(Exception):
    """Raised inside the handler after the connection was deliberately cut."""


def _words(text: str) -> int:
    return len(text.split())


def _message_text(content: Any) -> str:
    """Text of a message's content: a string, or a list of content parts (text parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text") and "text" in part:
                parts.append(str(part["text"]))
        return " ".join(parts)
    return str(content)


def _split_content(content: str, pieces: int = 4) -> list[str]:
    """Split ``content`` into several non-empty deltas (word boundaries kept with the word)."""
    if not content:
        return [""]
    tokens: list[str] = []
    start = 0
    for i in range(1, len(content)):
        if content[i] == " " and content[i - 1] != " ":
            tokens.append(content[start:i])
            start = i
    tokens.append(content[start:])
    if len(tokens) < 3 and len(content) >= 3:  # too few words: split by characters instead
        step = max(1, len(content) // pieces)
        return [content[i : i + step] for i in range(0, len(content), step)]
    return tokens


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, upstream: FakeUpstream):
        self.upstream = upstream
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):  # keep test output quiet
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeUpstream/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this

    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    # ---- plumbing -------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_bytes(self, status: int, body: bytes, content_type: str = "application/json",
                    extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra_headers:
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, obj: Any, extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        self._send_bytes(status, json.dumps(obj).encode(), extra_headers=extra_headers)

    def _send_error(self, status: int, message: str, type_: str | None = None, code: str | None = None,
                    extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        default_type, default_code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None))
        body = {"error": {"message": message, "type": type_ or default_type,
                          "code": code if code is not None else default_code, "param": None}}
        self._send_json(status, body, extra_headers)

    def _abort(self) -> None:
        """Cut the connection abruptly (RST where possible) and stop handling it."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Dropped()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _hang(self, seconds: float) -> None:
        """Send nothing until released, ``seconds`` pass or the caller hangs up (then stop)."""
        up = self.server.upstream
        release = up._release
        end = time.monotonic() + seconds
        sock = self.connection
        with up._lock:
            up.hanging += 1
        try:
            while time.monotonic() < end and not release.is_set():
                readable, _, _ = select.select([sock], [], [], 0.02)
                if readable:
                    try:
                        data = sock.recv(1, socket.MSG_PEEK)
                    except OSError:
                        data = b""
                    if not data:
                        with up._lock:
                            up.hung_up += 1
                        self._abort()
        finally:
            with up._lock:
                up.hanging -= 1

    def _check_auth(self) -> bool:
        key = self.server.upstream.api_key
        if key is None:
            return True
        if self.headers.get("Authorization", "") == f"Bearer {key}":
            return True
        self._send_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return False

    # ---- routing --------------------------------------------------------------------------

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except _Dropped:
            self.close_connection = True
        except (ConnectionError, socket.timeout, TimeoutError):
            self.close_connection = True

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            if not self._check_auth():
                return
            up = self.server.upstream
            created = int(up.started_at or time.time())
            self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": created, "owned_by": "fake-upstream"}
                for m in up.models]})
        elif path.startswith("/v1/models/"):
            if not self._check_auth():
                return
            model = path[len("/v1/models/"):]
            if model in self.server.upstream.models:
                self._send_json(200, {"id": model, "object": "model", "created": 0, "owned_by": "fake-upstream"})
            else:
                self._send_error(404, f"The model '{model}' does not exist", code="model_not_found")
        else:
            self._send_error(404, f"Unknown path {self.path}")

    def do_POST(self):
        raw = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/chat/completions":
            self._send_error(404, f"Unknown path {self.path}")
            return
        self._chat(raw)

    # ---- chat -----------------------------------------------------------------------------

    def _chat(self, raw: bytes) -> None:
        up = self.server.upstream
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        model = body.get("model") if isinstance(body, dict) else None
        up._record(model, body if body is not None else raw.decode("utf-8", "replace"), dict(self.headers.items()),
                   self.client_address)

        if not self._check_auth():
            return
        if not isinstance(body, dict):
            self._send_error(400, "We could not parse the JSON body of your request.")
            return
        messages = body.get("messages")
        if not model or not isinstance(messages, list):
            self._send_error(400, "'model' and 'messages' are required properties.")
            return

        stream = bool(body.get("stream"))
        fault = up._take_fault(model)
        scripted: str | None = None
        if fault is not None:
            kind, p = fault.kind, fault.params
            if kind == "delay":
                time.sleep(float(p.get("seconds", 1.0)))
            elif kind == "status":
                status = int(p.get("status", 500))
                headers = []
                if p.get("retry_after") is not None:
                    headers.append(("Retry-After", str(p["retry_after"])))
                for k, v in (p.get("headers") or {}).items():
                    headers.append((k, str(v)))
                self._send_error(status, p.get("message") or f"Injected fault: HTTP {status}",
                                 p.get("type"), p.get("code"), headers)
                return
            elif kind == "malformed":
                if stream:  # an SSE event whose data is not JSON
                    self._send_bytes(200, b'data: {"id": "chatcmpl-broken", "choices": [ not json\n\n',
                                     content_type="text/event-stream; charset=utf-8")
                else:
                    self._send_bytes(200, b'{"id": "chatcmpl-broken", "choices": [ this is not json')
                return
            elif kind == "drop":
                self._abort()
            elif kind == "error_event" and not (stream and p.get("chunks")):
                message = p.get("message") or "Injected fault: the model is overloaded"
                if not stream:
                    self._send_error(500, message)
                    return
                event = {"error": {"message": message, "type": "server_error", "code": "overloaded"}}
                self._send_bytes(200, b"data: " + json.dumps(event).encode() + b"\n\n",
                                 content_type="text/event-stream; charset=utf-8")
                return
            elif kind == "reply":
                scripted = str(p.get("content", ""))
            elif kind == "drop_mid_stream":
                pass  # handled below
            elif kind == "hang" and not (stream and p.get("chunks")):
                self._hang(float(p.get("seconds", 30.0)))
        if scripted is None:
            scripted = up._reply_for(model)
        if scripted is None:
            last_user = ""
            for m in reversed(messages):
                if isinstance(m, dict) and m.get("role") == "user":
                    last_user = _message_text(m.get("content"))
                    break
            content = f"echo[{model}]: {last_user}"
        else:
            content = scripted

        prompt_tokens = sum(_words(_message_text(m.get("content") if isinstance(m, dict) else m)) + 4
                            for m in messages)
        completion_tokens = _words(content)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        drop = fault is not None and fault.kind == "drop_mid_stream"

        if stream:
            hang = fault.params if fault is not None and fault.kind in ("hang", "error_event") \
                and fault.params.get("chunks") else None
            if hang is not None:
                hang = dict(hang, kind=fault.kind)
            self._stream(cid, created, model, content, usage, body, drop, hang)
            return

        if drop:
            payload = b"x" * 256
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self._abort()

        self._send_json(200, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage,
        }, [("x-request-id", f"req_{uuid.uuid4().hex[:16]}")])

    def _stream(self, cid: str, created: int, model: str, content: str, usage: dict, body: dict,
                drop: bool, hang: dict | None = None) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list, **extra) -> bytes:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": "fp_fake", "choices": choices}
            if include_usage:
                obj["usage"] = None
            obj.update(extra)
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        self.end_headers()

        self._write_chunk(chunk([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                                  "logprobs": None, "finish_reason": None}]))
        for i, piece in enumerate(_split_content(content)):
            if drop and i == 2:
                self._abort()
            if hang is not None and i == int(hang["chunks"]):
                if hang["kind"] == "hang":
                    self._hang(float(hang.get("seconds", 30.0)))
                else:
                    event = {"error": {"message": hang.get("message") or "Injected fault: overloaded",
                                       "type": "server_error", "code": "overloaded"}}
                    self._write_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
                    self._write_chunk(b"")
                    return
            self._write_chunk(chunk([{"index": 0, "delta": {"content": piece}, "logprobs": None,
                                      "finish_reason": None}]))
        if drop:  # content had fewer than 3 pieces
            self._abort()
        self._write_chunk(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
        if include_usage:
            self._write_chunk(chunk([], usage=usage))
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # terminating zero-length chunk


class FakeUpstream:
    """A real OpenAI-compatible HTTP server for tests (see the module docstring)."""

    def __init__(self, *, api_key: str | None = None, models: Iterable[str] = DEFAULT_MODELS):
        self.api_key = api_key
        self.models: list[str] = list(models)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._replies: dict[str, str] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._release = threading.Event()
        #: requests now held by a ``hang`` fault; connections closed by callers while held
        self.hanging = 0
        self.hung_up = 0
        self.started_at: float | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"FakeUpstream:{self.port}", daemon=True)
        self._thread.start()
        self.started_at = time.time()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self.release()
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstream is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # ---- recording ------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot (copy) of the chat requests received, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["model"] == model]

    def _record(self, model: str | None, body: Any, headers: dict[str, str], peer: Any = None) -> None:
        with self._lock:
            self._requests.append({"model": model, "body": body, "headers": headers, "time": time.time(),
                                   "peer": peer})

    # ---- faults and replies ---------------------------------------------------------------

    def add_fault(self, kind: str, *, model: str | None = None, times: int = 1, **params: Any) -> None:
        """Queue ``kind`` for the next ``times`` chat requests (to ``model``, or to any model)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append(Fault(kind, model, int(times), dict(params)))

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [copy.copy(f) for f in self._faults]

    def _take_fault(self, model: str | None) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.applies_to(model):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[i]
                    return copy.copy(fault)
        return None

    def set_reply(self, model: str, content: str) -> None:
        """Always answer ``model`` with ``content`` (until ``clear_replies``)."""
        with self._lock:
            self._replies[model] = content

    def clear_replies(self) -> None:
        with self._lock:
            self._replies.clear()

    def _reply_for(self, model: str) -> str | None:
        with self._lock:
            return self._replies.get(model)

    def release(self) -> None:
        """Let every request held by a ``hang`` fault answer (later hangs are held again)."""
        with self._lock:
            old, self._release = self._release, threading.Event()
        old.set()

    def reset(self) -> None:
        """Forget recorded requests, queued faults and hang counts, releasing held requests
        (scripted replies stay; see ``clear_replies``)."""
        self.release()
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self.hung_up = 0
