import copy
import json

import pytest
import yaml

from router import CatalogError, ModelCatalog, UnknownModelError

ORIGINAL_PRICES = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "deepseek-chat": (0.14, 0.28),
    "deepseek-v4-pro": (0.50, 2.19),
    "deepseek-reasoner": (0.55, 2.19),
    "glm-5.1": (0.625, 2.50),
    "glm-4-flash": (0.01, 0.04),
    "glm-4v": (0.50, 2.00),
}


def test_default_catalog_has_the_original_models_and_prices(catalog):
    assert set(catalog.names) == set(ORIGINAL_PRICES)
    for name, (p_in, p_out) in ORIGINAL_PRICES.items():
        m = catalog[name]
        assert (m.pricing.input_per_1m, m.pricing.output_per_1m) == (p_in, p_out)
        assert m.context_window == 128000
        assert m.provider.api_key_env.isupper()
        assert m.provider.base_url.startswith("https://")
    assert [m.name for m in catalog if m.vision] == ["glm-4v"]
    assert "temperature" in catalog["deepseek-reasoner"].unsupported_params


def test_priors_cover_every_text_task_and_are_probabilities(catalog):
    from router.tasks.taxonomy import TEXT_TASK_TYPES

    for m in catalog:
        for t in TEXT_TASK_TYPES:
            assert 0.0 <= m.prior(t) <= 1.0
    assert catalog["glm-4v"].prior("vision") > 0.8
    assert catalog["gpt-4o"].prior("vision") == 0.0


def test_cost_uses_both_prices(catalog):
    assert catalog["gpt-4o"].cost(1_000_000, 1_000_000) == pytest.approx(12.5)
    assert catalog["glm-4-flash"].cost(1000, 0) == pytest.approx(1e-5)


def test_fingerprint_is_stable_and_sensitive(catalog, catalog_dict):
    again = ModelCatalog.from_dict(catalog_dict)
    assert again.fingerprint() == catalog.fingerprint()
    catalog_dict["models"]["gpt-4o"]["pricing"]["input_per_1m"] = 2.6
    assert ModelCatalog.from_dict(catalog_dict).fingerprint() != catalog.fingerprint()


@pytest.mark.parametrize(
    "mutate, model, field",
    [
        (lambda d: d["models"]["gpt-4o"].pop("pricing"), "gpt-4o", "pricing"),
        (lambda d: d["models"]["gpt-4o"]["pricing"].pop("output_per_1m"), "gpt-4o", "pricing.output_per_1m"),
        (lambda d: d["models"]["glm-4v"]["pricing"].update(input_per_1m=-1), "glm-4v", "pricing.input_per_1m"),
        (lambda d: d["models"]["glm-4v"]["pricing"].update(input_per_1m="cheap"), "glm-4v", "pricing.input_per_1m"),
        (lambda d: d["models"]["deepseek-chat"].update(capabilities=["telepathy"]), "deepseek-chat", "capabilities"),
        (lambda d: d["models"]["deepseek-chat"]["quality_priors"].update(poetry=0.5), "deepseek-chat",
         "quality_priors.poetry"),
        (lambda d: d["models"]["deepseek-chat"]["quality_priors"].update(code=1.5), "deepseek-chat",
         "quality_priors.code"),
        (lambda d: d["models"]["deepseek-chat"]["quality_priors"].pop("math"), "deepseek-chat",
         "quality_priors.math"),
        (lambda d: d["models"]["gpt-4o"].update(context_window=0), "gpt-4o", "context_window"),
        (lambda d: d["models"]["gpt-4o"].update(max_output_tokens=200000), "gpt-4o", "max_output_tokens"),
        (lambda d: d["models"]["gpt-4o"].update(unsupported_params=["warp"]), "gpt-4o", "unsupported_params"),
        (lambda d: d["models"]["gpt-4o"].update(strengths=["magic"]), "gpt-4o", "strengths"),
        (lambda d: d["models"]["gpt-4o"].update(colour="red"), "gpt-4o", "colour"),
        (lambda d: d["models"]["gpt-4o"]["provider"].update(api_key_env="sk-abc123"), "gpt-4o",
         "provider.api_key_env"),
        (lambda d: d["models"]["gpt-4o"]["provider"].update(base_url="ftp://x"), "gpt-4o", "provider.base_url"),
    ],
)
def test_invalid_entries_name_model_and_field(catalog_dict, mutate, model, field):
    mutate(catalog_dict)
    with pytest.raises(CatalogError) as err:
        ModelCatalog.from_dict(catalog_dict)
    assert f"model {model!r}" in str(err.value)
    assert f"field {field!r}" in str(err.value)


def test_default_prior_fills_missing_tasks(catalog_dict):
    catalog_dict["models"]["deepseek-chat"]["quality_priors"] = {"default": 0.6, "code": 0.9}
    c = ModelCatalog.from_dict(catalog_dict)
    assert c["deepseek-chat"].prior("code") == 0.9
    assert c["deepseek-chat"].prior("qa") == 0.6


@pytest.mark.parametrize("data", [None, [], {"models": {}}, {"models": []}, {"models": {"x": 3}}])
def test_structurally_broken_catalogs(data):
    with pytest.raises(CatalogError):
        ModelCatalog.from_dict(data)


def test_load_user_catalog_file_yaml_and_json(tmp_path, catalog_dict):
    small = {"models": {k: catalog_dict["models"][k] for k in ("gpt-4o", "glm-4-flash")}}
    y = tmp_path / "mine.yaml"
    y.write_text(yaml.safe_dump(small, sort_keys=False))
    j = tmp_path / "mine.json"
    j.write_text(json.dumps(small))
    assert ModelCatalog.load(y).names == ("gpt-4o", "glm-4-flash")
    assert ModelCatalog.load(j).names == ("gpt-4o", "glm-4-flash")


def test_unreadable_and_unparsable_files(tmp_path):
    with pytest.raises(CatalogError, match="cannot read catalog"):
        ModelCatalog.load(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {gpt-4o: [unclosed")
    with pytest.raises(CatalogError, match="not valid YAML"):
        ModelCatalog.load(bad)


def test_env_var_selects_catalog(tmp_path, catalog_dict, monkeypatch):
    from router.config import default_catalog_path

    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"models": {"gpt-4o": catalog_dict["models"]["gpt-4o"]}}))
    assert default_catalog_path({"ROUTER_CATALOG": str(p)}) == p
    monkeypatch.setenv("ROUTER_CATALOG", str(p))
    assert ModelCatalog.load().names == ("gpt-4o",)


def test_aliases_resolve_and_unknown_model_lists_known(catalog_dict):
    catalog_dict["models"]["gpt-4o"]["aliases"] = ["openai/gpt-4o"]
    c = ModelCatalog.from_dict(catalog_dict)
    assert c["openai/gpt-4o"].name == "gpt-4o"
    assert "openai/gpt-4o" in c
    with pytest.raises(UnknownModelError, match="unknown model 'gpt-5'.*glm-4v"):
        c["gpt-5"]
    catalog_dict["models"]["glm-4v"]["aliases"] = ["openai/gpt-4o"]
    with pytest.raises(CatalogError, match="alias"):
        ModelCatalog.from_dict(catalog_dict)


def test_duplicate_model_key_in_yaml_is_refused_naming_key_and_line(tmp_path, catalog_dict):
    one = yaml.safe_dump({"gpt-4o": catalog_dict["models"]["gpt-4o"]}, sort_keys=False)
    two = yaml.safe_dump({"gpt-4o": {**catalog_dict["models"]["glm-4-flash"]}}, sort_keys=False)
    p = tmp_path / "dup.yaml"
    p.write_text("models:\n" + "".join("  " + line + "\n" for line in (one + two).splitlines()))
    with pytest.raises(CatalogError, match=r"dup\.yaml: line \d+: duplicate key 'gpt-4o' \(first at line 2"):
        ModelCatalog.load(p)


def test_duplicate_key_in_json_is_refused(tmp_path, catalog_dict):
    spec = json.dumps(catalog_dict["models"]["gpt-4o"])
    p = tmp_path / "dup.json"
    p.write_text('{"models": {"gpt-4o": %s, "gpt-4o": %s}}' % (spec, spec))
    with pytest.raises(CatalogError, match="duplicate key 'gpt-4o'"):
        ModelCatalog.load(p)


@pytest.mark.parametrize("name", ["auto", "auto:premium"])
def test_routing_names_cannot_be_models_or_aliases(catalog_dict, name):
    as_alias = copy.deepcopy(catalog_dict)
    as_alias["models"]["gpt-4o"]["aliases"] = [name]
    with pytest.raises(CatalogError, match=f"alias '{name}' is reserved"):
        ModelCatalog.from_dict(as_alias)
    as_model = copy.deepcopy(catalog_dict)
    as_model["models"][name] = as_model["models"]["gpt-4o"]
    with pytest.raises(CatalogError, match=f"model name '{name}' is reserved"):
        ModelCatalog.from_dict(as_model)
