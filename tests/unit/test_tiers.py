"""With the regex classifier and the catalog priors, the tiers reproduce the original design's
fixed routing tables (its `route_model`), for every task in every tier and for its examples."""

import pytest

from router import Router

ORIGINAL_TABLE = {
    "budget": {"code": "deepseek-chat", "reasoning": "deepseek-reasoner", "classification": "glm-4-flash",
               "translation": "glm-4-flash", "creative": "deepseek-chat", "general": "deepseek-chat",
               "vision": "glm-4v"},
    "balanced": {"code": "deepseek-v4-pro", "reasoning": "deepseek-reasoner", "classification": "glm-4-flash",
                 "translation": "glm-5.1", "creative": "glm-5.1", "general": "deepseek-chat", "vision": "glm-4v"},
    "quality": {"code": "deepseek-v4-pro", "reasoning": "deepseek-reasoner", "classification": "glm-5.1",
                "translation": "glm-5.1", "creative": "glm-5.1", "general": "deepseek-v4-pro", "vision": "glm-4v"},
}

# A prompt the original regex puts in each task.
PROMPT_FOR = {
    "code": "Write a Python function to merge sort an array",
    "reasoning": "Explain the Monty Hall problem with math",
    "classification": "Classify this tweet as positive or negative",
    "translation": "Translate this to Spanish: good morning",
    "creative": "Write a story about a lighthouse keeper",
    "general": "hello, how are you?",
    "vision": "Describe this image in detail",
}


@pytest.fixture(scope="module")
def router():
    return Router.default()


@pytest.mark.parametrize("tier", list(ORIGINAL_TABLE))
@pytest.mark.parametrize("task", list(PROMPT_FOR))
def test_tier_reproduces_original_table(router, tier, task):
    d = router.route(PROMPT_FOR[task], tier=tier)
    assert d.task == task
    assert d.model == ORIGINAL_TABLE[tier][task]


def test_reproduction_holds_for_long_prompts_too(router):
    long = "Write a Python function to merge sort an array. " + "Here is context. " * 2000
    for tier in ORIGINAL_TABLE:
        assert router.route(long, tier=tier).model == ORIGINAL_TABLE[tier]["code"]


def test_original_examples_end_to_end(router):
    decisions = router.route_many(
        ["Write a Python function to merge sort an array", "Classify this tweet as positive or negative",
         "Explain the Monty Hall problem with math"],
        tier="balanced",
    )
    assert [d.model for d in decisions] == ["deepseek-v4-pro", "glm-4-flash", "deepseek-reasoner"]
    assert all(d.rule == "cheapest_meeting_target" for d in decisions)
