import pytest

from router import Router


@pytest.fixture(scope="module")
def router_():
    """The cold-start router (regex + catalog priors): expected models follow the tier tables."""
    return Router.default()


