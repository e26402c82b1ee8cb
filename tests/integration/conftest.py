import pytest

from router import Router


@pytest.fixture(scope="module")
def router_():
    """The cold-start router (regex + catalog priors): expected models follow the tier tables."""
    return Router.default()


@pytest.fixture
def up(upstream):
    """The module's FakeUpstream (each test module defines ``upstream``), clean for each test."""
    upstream.reset()
    upstream.clear_replies()
    yield upstream
    upstream.reset()
    upstream.clear_replies()
