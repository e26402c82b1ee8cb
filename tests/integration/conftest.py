import pytest

from router import Router
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture(scope="module")
def router_():
    """The cold-start router (regex + catalog priors): expected models follow the tier tables."""
    return Router.default()


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
