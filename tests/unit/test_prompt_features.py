"""The hand features' fast forms (a first-character lookahead on the code pattern, a character
class for non-Latin script) count exactly what the plain definitions count."""

from __future__ import annotations

import random
import re

import numpy as np

from router.text import features

PLAIN_CODE = re.compile(features._CODE.pattern.replace("(?=[dcirf={};Svp#w<])", "", 1), re.MULTILINE)


def _texts():
    rng = random.Random(7)
    alphabet = list("defclassimportreturnfunction=>{};SELECTconstvarpublicprint(console.forwhile<>/ \n\t#include12") \
        + ["\u3000", "\u2003", "\u00a0", "é", "中", "ß", "٣", "²"]
    out = ["def f(x):\n    return x", "SELECT * FROM t;", "<div>hi</div>", "for (i=0;i<3;i++) {}", "plain words", ""]
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 400))) for _ in range(1500)]
    out += ["".join(chr(rng.randrange(0, 0x3100)) for _ in range(120)) for _ in range(500)]
    return out


def test_code_pattern_finds_what_the_plain_pattern_finds():
    assert PLAIN_CODE.pattern != features._CODE.pattern
    for t in _texts():
        assert features._CODE.findall(t) == PLAIN_CODE.findall(t), t


def test_non_latin_and_digit_shares_match_their_definitions():
    texts = _texts()
    got = features.prompt_features(texts)
    col = {n: i for i, n in enumerate(features.FEATURE_NAMES)}
    for t, row in zip(texts, got):
        n = max(1, len(t))
        non_latin = sum(1 for ch in t if ord(ch) > 0x24F and not ch.isspace()) / n
        digits = sum(ch.isdigit() for ch in t) / n
        assert row[col["non_latin"]] == np.float32(min(1.0, non_latin * 1.5))
        assert row[col["digits"]] == np.float32(min(1.0, digits * 5))
