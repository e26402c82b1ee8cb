import pytest

from router import RegexTaskClassifier, classify_task
from router.tasks.taxonomy import TASK_PATTERNS, TASK_TYPES, complexity_bucket, estimate_complexity


@pytest.mark.parametrize(
    "prompt, task",
    [
        # The original design's examples.
        ("Write a Python function to merge sort an array", "code"),
        ("Classify this tweet as positive or negative", "classification"),
        ("Explain the Monty Hall problem with math", "reasoning"),
        # One of each other pattern family.
        ("Please refactor my module", "code"),
        ("Is this spam? check if a valid address", "classification"),
        ("translate this into German", "translation"),
        ("compose a poem about rain", "creative"),
        ("brainstorm names for my cat", "creative"),
        ("describe this image for me", "vision"),
        ("hello there", "general"),
        ("", "general"),
    ],
)
def test_original_behaviour(prompt, task):
    assert classify_task(prompt) == task


def test_highest_count_wins_and_ties_go_to_first_listed():
    # translation scores 2 (translate ... to, in french), reasoning 1 (explain)
    assert classify_task("Explain and translate this to English in French") == "translation"
    # code 1 ("write a function") vs creative 1 ("write a story"): code is listed first
    assert classify_task("write a function and write a story") == "code"


def test_patterns_map_onto_taxonomy():
    assert set(TASK_PATTERNS) <= set(TASK_TYPES)


def test_regex_classifier_predictions():
    preds = RegexTaskClassifier().predict(["Write a Python function to merge sort an array", "hi"])
    assert [p.task for p in preds] == ["code", "general"]
    assert all(p.source == "regex" for p in preds)
    assert preds[0].confidence > preds[1].confidence
    assert all(p.complexity in ("easy", "medium", "hard") for p in preds)


def test_complexity_grows_with_length_and_hard_markers():
    easy = estimate_complexity("quick question: capital of France?")
    hard = estimate_complexity(
        "Prove rigorously that the algorithm terminates, derive its complexity, and discuss "
        "the edge cases for concurrent distributed execution " + "with many constraints " * 20
    )
    assert easy < 0.35 <= 0.65 <= hard
    assert complexity_bucket(easy) == "easy" and complexity_bucket(hard) == "hard"
    assert complexity_bucket(0.5) == "medium"
