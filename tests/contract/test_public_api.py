"""The public API: ``router.__all__`` and each re-exporting subpackage's ``__all__``, exactly."""

from __future__ import annotations

import ast
import importlib

from tests.support.imports import modules

ROUTER_ALL = [
    "Router",
    "RoutedClient",
    "ModelCatalog",
    "ModelSpec",
    "PolicyConfig",
    "Constraints",
    "TaskPrediction",
    "QualityEstimate",
    "RoutingDecision",
    "SavingsReport",
    "savings_report",
    "TASK_TYPES",
    "RegexTaskClassifier",
    "classify_task",
    "RouterError",
    "CatalogError",
    "ConfigError",
    "ArtifactError",
    "DataError",
    "InvalidRequestError",
    "UnknownModelError",
    "NoEligibleModelError",
    "UpstreamError",
    "TrackingError",
    "UsageLogError",
    "__version__",
]

#: Every package whose ``__init__`` re-exports names, with its exact ``__all__``.
SUBPACKAGE_ALL = {
    "router.embedders": [
        "Embedder",
        "SentenceTransformerEmbedder",
        "OnnxMiniLMEmbedder",
        "USEEmbedder",
        "HashingEmbedder",
        "ConcatEmbedder",
        "ViewsEmbedder",
        "GatedEmbedder",
        "CachedEmbedder",
        "with_cache",
        "make_embedder",
        "minilm_path",
        "clip_text",
        "CLIP_VERSION",
        "DEFAULT_EMBEDDER",
    ],
    "router.serving.gateway": ["create_app"],
    "router.learning": ['Explored', 'explore', 'Estimate', 'ips', 'snips', 'dr', 'effective_sample_size', 'PolicyValue', 'GateResult', 'gate_decision'],
    "router.serving.client": ['RoutedClient', 'AsyncRoutedClient', 'RoutedStream', 'AsyncRoutedStream', 'JsonCompletion', 'JsonEventStream', 'RetryPolicy', 'EscalationPolicy', 'code_placeholder', 'reasoning_uncertainty', 'DEFAULT_CHECKS', 'AUTO_MODELS', 'new_request_id', 'ChatTransport', 'ChatCall', 'Endpoint', 'SDKTransport', 'RawTransport', 'JsonView', 'RawCompletion', 'RawChunk'],
}


def test_router_all_is_exact():
    import router

    assert list(router.__all__) == ROUTER_ALL
    for name in router.__all__:
        assert hasattr(router, name), name
    public = {n for n in vars(router) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(router.__all__), public - set(router.__all__)


def test_subpackage_all_is_exact():
    for name, expected in SUBPACKAGE_ALL.items():
        module = importlib.import_module(name)
        assert list(module.__all__) == expected, name
        for attr in expected:
            assert hasattr(module, attr), f"{name}.{attr}"


def test_every_reexporting_package_is_pinned():
    reexporting = set()
    for name, path in modules().items():
        if path.name != "__init__.py" or name == "router":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.ImportFrom) for node in tree.body):
            reexporting.add(name)
    assert reexporting == set(SUBPACKAGE_ALL)


def test_error_tree():
    from router import RouterError, errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), RouterError)
