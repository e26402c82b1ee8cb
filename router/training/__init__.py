"""Training pipelines: datasets and importers, features, fitting, evaluation, tracking.

The only package of the project that imports mlflow (in ``router.training.tracking``).
"""
