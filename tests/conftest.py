import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from router import ModelCatalog  # noqa: E402
from router.config import PROJECT_ROOT  # noqa: E402

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def catalog() -> ModelCatalog:
    return ModelCatalog.load()


@pytest.fixture
def catalog_dict(catalog) -> dict:
    """A fresh, mutable copy of the default catalog as a dict."""
    import copy

    return copy.deepcopy(catalog.to_dict())
