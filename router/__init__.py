"""A learned LLM router: send each chat request to the cheapest model that will answer it well.

>>> from router import Router
>>> r = Router.default()
>>> r.route("Classify this tweet as positive or negative").model
'glm-4-flash'
"""

from .catalog.model_catalog import ModelCatalog, ModelSpec
from .serving.client import RoutedClient
from .errors import (
    ArtifactError,
    CatalogError,
    ConfigError,
    DataError,
    InvalidRequestError,
    NoEligibleModelError,
    RouterError,
    TrackingError,
    UnknownModelError,
    UpstreamError,
    UsageLogError,
)
from .policy import Constraints, PolicyConfig
from .routing import Router
from .savings import SavingsReport, savings_report
from .tasks.taxonomy import TASK_TYPES, RegexTaskClassifier, classify_task
from .types import QualityEstimate, RoutingDecision, TaskPrediction

__version__ = "0.1.0"

__all__ = [
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
