"""The one precedence: --router > $ROUTER_MODEL > mlflow.yaml's router: > its champion > cold start."""

import pytest

from router import ArtifactError, Router, RouterError
from router.persistence.resolve import choose_router, pin
from router.routing import load_configured


@pytest.fixture
def saved(tmp_path):
    return Router.default().save(tmp_path / "saved")


def test_precedence_of_the_router_settings(tmp_path):
    cfg = tmp_path / "mlflow.yaml"
    cfg.write_text("tracking_uri: sqlite:///x.db\nregistered_model: mine\naliases: {champion: prod}\n")
    env = {"ROUTER_PROJECT_DIR": str(tmp_path)}
    assert choose_router(environ=env).spec == "models:/mine@prod"
    assert choose_router(environ=env).tracking_uri == "sqlite:///x.db"
    cfg.write_text("tracking_uri: sqlite:///x.db\nrouter: /some/folder\n")
    assert choose_router(environ=env).spec == "/some/folder" and "router: in mlflow.yaml" in choose_router(environ=env).origin
    env["ROUTER_MODEL"] = "models:/other/3"
    assert choose_router(environ=env).spec == "models:/other/3" and choose_router(environ=env).origin == "$ROUTER_MODEL"
    env["MLFLOW_TRACKING_URI"] = "http://mlflow:5000"
    assert choose_router(environ=env).tracking_uri == "http://mlflow:5000"
    c = choose_router("flag/folder", environ=env)
    assert c.spec == "flag/folder" and c.explicit
    assert choose_router("cold-start", environ=env).spec is None  # asked for by name
    # no mlflow.yaml at all: the default champion in the default store
    empty = {"ROUTER_PROJECT_DIR": str(tmp_path / "nowhere")}
    c = choose_router(environ=empty)
    assert c.spec == "models:/llm-router@champion" and c.origin == "the default"


def test_bad_mlflow_yaml_is_named(tmp_path):
    (tmp_path / "mlflow.yaml").write_text("router: [unclosed\n")
    with pytest.raises(RouterError, match="mlflow.yaml: not valid YAML"):
        choose_router(environ={"ROUTER_PROJECT_DIR": str(tmp_path)})
    (tmp_path / "mlflow.yaml").write_text("- a list\n")
    with pytest.raises(RouterError, match="expected a mapping"):
        choose_router(environ={"ROUTER_PROJECT_DIR": str(tmp_path)})


def test_loads_a_folder_from_the_environment_and_falls_back_from_a_missing_one(tmp_path, saved):
    env = {"ROUTER_PROJECT_DIR": str(tmp_path), "ROUTER_MODEL": str(saved)}
    r = load_configured(environ=env)
    assert r.folder == saved and r.fallback is None and not r.cold_start and str(saved) in r.describe()
    env["ROUTER_MODEL"] = str(tmp_path / "missing")
    r = load_configured(environ=env)
    assert r.cold_start and "no router folder" in r.fallback and "cold-start router" in r.describe()
    with pytest.raises(ArtifactError, match="configured router .*missing.*no router folder"):
        load_configured(environ=env, allow_cold_start=False)
    with pytest.raises(ArtifactError, match="no router folder"):  # an explicit --router never falls back
        load_configured(str(tmp_path / "missing"), environ=env)


def test_a_missing_sqlite_store_is_reported_not_created(tmp_path):
    db = tmp_path / "mlflow.db"
    with pytest.raises(ArtifactError, match="no MLflow store at"):
        pin("models:/m@champion", f"sqlite:///{db}")
    assert not db.exists()
    assert pin("models:/m/4", f"sqlite:///{db}") == "models:/m/4"  # a version needs no lookup
    assert pin("some/folder", f"sqlite:///{db}") == "some/folder"


def test_router_from_config(tmp_path, saved, monkeypatch):
    monkeypatch.setenv("ROUTER_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("ROUTER_MODEL", str(saved))
    assert Router.from_config().catalog.names == Router.default().catalog.names
    monkeypatch.setenv("ROUTER_MODEL", "cold-start")
    assert isinstance(Router.from_config(), Router)
    with pytest.raises(ArtifactError):
        Router.from_config(tmp_path / "missing")


def test_an_unreachable_tracking_server_fails_fast_naming_it(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ArtifactError, match=f"tracking server http://127.0.0.1:{port} is unreachable"):
        pin("models:/m@champion", f"http://127.0.0.1:{port}")
    env = {"ROUTER_PROJECT_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    r = load_configured(environ=env)  # route: cold start, saying why
    assert r.cold_start and "unreachable" in r.fallback
    with pytest.raises(ArtifactError, match="unreachable"):  # serve: refuse
        load_configured(environ=env, allow_cold_start=False)


def test_the_cli_reuses_an_alias_lookup_for_a_minute_until_an_alias_moves(tmp_path, monkeypatch):
    from router.persistence import registry
    from router.persistence.resolve import forget_aliases

    db = tmp_path / "mlflow.db"
    db.touch()
    uri, env = f"sqlite:///{db}", {"ROUTER_CACHE_DIR": str(tmp_path / "cache")}
    answers = iter(["3", "4", "5"])
    calls = []
    monkeypatch.setattr(registry, "alias_version", lambda n, a, t: calls.append((n, a, t)) or next(answers))
    now = [1000.0]
    kw = dict(environ=env, clock=lambda: now[0])
    assert pin("models:/m@champion", uri, max_age_s=60, **kw) == "models:/m/3"
    now[0] += 30
    assert pin("models:/m@champion", uri, max_age_s=60, **kw) == "models:/m/3" and len(calls) == 1
    assert pin("models:/m@champion", uri, **kw) == "models:/m/4"  # max_age 0 (serve, from_config): always asks
    now[0] += 59
    assert pin("models:/m@champion", uri, max_age_s=60, **kw) == "models:/m/4" and len(calls) == 2
    forget_aliases(uri, environ=env)  # what promote / rollback do
    assert pin("models:/m@champion", uri, max_age_s=60, **kw) == "models:/m/5" and len(calls) == 3
    assert calls[0] == ("m", "champion", uri)
