"""Champion reload: a watcher that swaps the router when the alias (or folder) moves."""

import logging

import pytest

from router import ModelCatalog, PolicyConfig, Router
from router.serving.reload import ChampionWatcher, router_version
from tests.support.loop_data import CATALOG


def test_swaps_once_when_the_version_moves_and_logs_it(caplog):
    versions = iter(["llm-router/1", "llm-router/1", "llm-router/2", "llm-router/2"])
    swapped = []
    w = ChampionWatcher("models:/llm-router@champion", lambda r, v: swapped.append((r, v)),
                        resolve=lambda uri: next(versions), load=lambda uri: f"router at {uri}")
    assert w.current == "llm-router/1"
    with caplog.at_level(logging.INFO, logger="router.reload"):
        assert w.check_now() is False
        assert w.check_now() is True
        assert w.check_now() is False
    assert swapped == [("router at models:/llm-router@champion", "llm-router/2")]
    assert w.current == "llm-router/2" and "to llm-router/2" in caplog.text


def test_a_failed_load_keeps_the_current_router():
    def broken(uri):
        raise OSError("registry down")

    w = ChampionWatcher("x", lambda r, v: pytest.fail("must not swap"), resolve=lambda u: "v2", load=broken,
                        current="v1")
    assert w.check_now() is False and w.current == "v1" and "registry down" in w.last_error


def test_a_folder_is_watched_by_its_fingerprint(tmp_path):
    catalog = ModelCatalog.from_dict(CATALOG)
    path = Router.default(catalog).save(tmp_path / "champion")
    got = []
    w = ChampionWatcher(path, lambda r, v: got.append((r, v)))
    assert w.current.startswith("sha256:") and w.check_now() is False
    Router.default(catalog, policy=PolicyConfig(tiers={"balanced": 0.5})).save(path)  # a new champion
    assert w.check_now() is True
    assert got[0][0].policy.tiers == {"balanced": 0.5} and got[0][1] == router_version(path) == w.current


def test_start_and_stop_the_thread(tmp_path):
    w = ChampionWatcher("x", lambda r, v: None, resolve=lambda u: "v1", load=lambda u: None, interval=0.01)
    w.start()
    w.start()  # idempotent
    w.stop()
    assert w._thread is None
    with pytest.raises(ValueError, match="interval"):
        ChampionWatcher("x", lambda r, v: None, resolve=lambda u: "v1", load=lambda u: None, interval=0)
