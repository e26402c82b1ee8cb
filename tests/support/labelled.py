"""Small labelled sets in English and Spanish for tests of the gated classifier."""

from router.training.data.datasets import LabelledPrompt, LabelledSet

#: code and creative asks, each in English and in Spanish
BILINGUAL = [
    ("write a python function to reverse a list", "code"), ("fix this javascript bug in my loop", "code"),
    ("escribe una función en python que invierta una lista", "code"),
    ("corrige este error de javascript en mi bucle", "code"),
    ("write a poem about the sea", "creative"), ("compose a short story about a dragon", "creative"),
    ("escribe un poema sobre el mar", "creative"), ("compón una historia corta sobre un dragón", "creative"),
]
TRANSLATION = [
    ("translate 'good morning' into French", "translation"), ("put this sentence into German please", "translation"),
    ("traduce 'buenos días' al francés", "translation"), ("traduce esta frase al alemán", "translation"),
]


def labelled(pairs) -> LabelledSet:
    """(prompt, task) pairs as a labelled set from two sources, ``a`` and ``b`` in turn."""
    return LabelledSet([LabelledPrompt(prompt=p, task=t, source="a" if i % 2 else "b") for i, (p, t) in enumerate(pairs)])
