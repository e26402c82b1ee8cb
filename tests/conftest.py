import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Commands without --router use $ROUTER_MODEL before the project's MLflow champion: pin the
# cold-start router so a champion left by `make demo` in the checkout does not change results
# (tests of the precedence itself set or unset it with monkeypatch).
os.environ["ROUTER_MODEL"] = "cold-start"

from router import ModelCatalog  # noqa: E402
from tests.support.fake_upstream import FakeUpstream  # noqa: E402


@pytest.fixture(scope="session")
def catalog() -> ModelCatalog:
    return ModelCatalog.load()


@pytest.fixture
def catalog_dict(catalog) -> dict:
    """A fresh, mutable copy of the default catalog as a dict."""
    import copy

    return copy.deepcopy(catalog.to_dict())


@pytest.fixture(scope="module")
def upstream():
    """One FakeUpstream per test module (a module may override it, e.g. with an API key)."""
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(upstream):
    """The module's FakeUpstream, clean for each test."""
    upstream.reset()
    upstream.clear_replies()
    yield upstream
    upstream.reset()
    upstream.clear_replies()
