"""Layout rules of the serving side: no openai SDK private names anywhere under router/, the
client's public names pinned, and small modules."""

from __future__ import annotations

import ast
from pathlib import Path

import router
import router.serving.client as client_pkg

ROUTER_DIR = Path(router.__file__).resolve().parent
SERVING_DIRS = [ROUTER_DIR / "serving" / "client", ROUTER_DIR / "serving" / "gateway"]

#: Private attributes of the openai SDK's clients the old fast path read.
SDK_PRIVATE_ATTRS = frozenset({"_client", "_make_sse_decoder", "_make_status_error_from_response",
                               "_custom_query", "_provider_runtime", "_api_key_provider"})
#: Private modules of the SDK (any ``openai._x``) and SDK-internal header names.
SDK_PRIVATE_STRINGS = ("x-stainless", "_httpx2", "_streaming_cleanup")


def _violations(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "openai":
            if any(part.startswith("_") for part in node.module.split(".")[1:]):
                found.append(f"{where}: imports {node.module}")
            found += [f"{where}: imports {a.name} from openai" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [f"{where}: imports {a.name}" for a in node.names
                      if a.name.split(".")[0] == "openai" and any(p.startswith("_") for p in a.name.split(".")[1:])]
        elif isinstance(node, ast.Attribute) and node.attr in SDK_PRIVATE_ATTRS:
            found.append(f"{where}: reads .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"{where}: mentions {s!r}" for s in SDK_PRIVATE_STRINGS if s in node.value.lower()]
    return found


def test_no_module_under_router_uses_sdk_private_names():
    files = sorted(ROUTER_DIR.rglob("*.py"))
    assert len(files) > 30
    bad = [v for f in files for v in _violations(f, str(f.relative_to(ROUTER_DIR.parent)))]
    assert not bad, "\n".join(bad)


def test_the_check_finds_what_it_looks_for(tmp_path):
    f = tmp_path / "probe.py"
    f.write_text("from openai._httpx2 import x\nimport openai._streaming_cleanup\n"
                 "def f(c):\n    return c._client, c._make_sse_decoder, {'x-stainless-retry-count': '0'}\n")
    found = _violations(f, "probe.py")
    assert len(found) == 5, found


def test_client_public_names_are_pinned():
    assert client_pkg.__all__ == [
        "RoutedClient", "AsyncRoutedClient", "RoutedStream", "AsyncRoutedStream", "JsonCompletion",
        "JsonEventStream", "RetryPolicy", "EscalationPolicy", "code_placeholder", "reasoning_uncertainty",
        "DEFAULT_CHECKS", "AUTO_MODELS", "new_request_id", "ChatTransport", "ChatCall", "Endpoint",
        "SDKTransport", "RawTransport", "JsonView", "RawCompletion", "RawChunk",
    ]
    for name in client_pkg.__all__:
        assert getattr(client_pkg, name) is not None
    assert router.RoutedClient is client_pkg.RoutedClient


def test_serving_modules_are_small():
    sizes = {str(f.relative_to(ROUTER_DIR)): len(f.read_text().splitlines())
             for d in SERVING_DIRS for f in d.glob("*.py")}
    assert len(sizes) >= 10
    assert max(sizes.values()) <= 400, sizes
