"""Fetch a router folder from an MLflow registry or run URI, and read what an alias points at.
The only module of ``router/`` that imports mlflow, and only when called."""

from __future__ import annotations

from pathlib import Path

from ..errors import ArtifactError

__all__ = ["download_router", "resolve_alias", "alias_version"]

#: Where the router folder sits inside a logged MLflow model (see training/tracking.py).
ROUTER_SUBDIR = ("artifacts", "router")


def _mlflow():
    try:
        import mlflow
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise ArtifactError("loading a registry router needs mlflow installed (pip install mlflow)") from None
    return mlflow, MlflowException


def alias_version(name: str, alias: str, tracking_uri: str | None = None) -> str:
    """The version number the registered model ``name``'s ``alias`` points at now."""
    mlflow, MlflowException = _mlflow()
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        raise ArtifactError(f"cannot resolve models:/{name}@{alias}: {exc.message}") from None
    except Exception as exc:  # connection errors and the like
        raise ArtifactError(f"cannot resolve models:/{name}@{alias}: {type(exc).__name__}: {exc}") from None


def download_router(uri: str, dst: str | Path | None = None, *, tracking_uri: str | None = None) -> Path:
    """Download ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/ID/PATH`` and return
    the local router folder inside it. ``tracking_uri``: the store to read (default: mlflow's
    own default, ``$MLFLOW_TRACKING_URI``)."""
    mlflow, MlflowException = _mlflow()
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst) if dst else None,
                                                tracking_uri=tracking_uri, registry_uri=tracking_uri)
        )
    except MlflowException as exc:
        raise ArtifactError(f"cannot fetch {uri}: {exc.message}") from None
    except Exception as exc:  # connection errors and the like
        raise ArtifactError(f"cannot fetch {uri}: {type(exc).__name__}: {exc}") from None
    for candidate in (local, local.joinpath(*ROUTER_SUBDIR), local / "router"):
        if (candidate / "router.json").is_file():
            return candidate
    found = sorted(local.glob("**/router.json"), key=lambda p: len(p.parts))
    if found:
        return found[0].parent
    raise ArtifactError(f"{uri} holds no router folder (no router.json under {local})")


def resolve_alias(uri: str, tracking_uri: str | None = None) -> str:
    """``models:/NAME@ALIAS`` -> ``NAME/VERSION`` the alias points at now (``models:/NAME/VERSION``
    is returned as ``NAME/VERSION``)."""
    body = uri[len("models:/"):] if uri.startswith("models:/") else uri
    if "@" not in body:
        return body
    name, alias = body.split("@", 1)
    return f"{name}/{alias_version(name, alias, tracking_uri)}"
