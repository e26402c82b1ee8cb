"""An automatic judge for the usage log (``router judge``): a strong model grades logged
(prompt, answer) pairs and its grades are stored as ``origin=judge`` feedback.

::

    client = RoutedClient(Router.default(catalog), escalation=None)   # the provider configuration
    with UsageStore(url) as store:
        report = run_judge(client, store, "gpt-4o", sample=200, max_cost=1.0)

* **Which rows**: requests logged with ``store_responses`` (the answer) and the text (prompt or
  classifier text), not yet graded under the same rubric; ``sample`` of them drawn uniformly by
  reservoir sampling over the log in chunks (seeded; memory bounded by the sample).
* **Spending cap**: each call's cost is estimated before it is made from the judge model's catalog
  prices x (rubric + prompt + answer tokens) + ``max_output_tokens`` at the output price. The total
  estimate is reported before any call; during the run, the next call is made only when the
  spend so far (the client's actual, usage-based cost) plus its estimate stays within ``max_cost``.
* **Rubric**: a text with a version id and its sha256 (:class:`Rubric`); both, the judge model and
  the raw grade go into each feedback row's ``meta``. A regraded rubric is a new version.
* **Retries and fallback**: the call goes through the :class:`~router.serving.client.RoutedClient`
  with the judge model named (a pass-through), so its retry policy applies; a request that fails
  after its retries is counted and the run goes on.
* **Agreement** (:func:`agreement`): where a request has both human and judge feedback, the share
  that agree (both >= 0.5 or both < 0.5), Cohen's kappa of that binary verdict and the Pearson
  correlation of the scores.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError, RouterError, UnknownModelError
from ..text.request import estimate_tokens

__all__ = ["Rubric", "DEFAULT_RUBRIC", "parse_grade", "estimate_call_cost", "judge_messages", "JudgeReport",
           "sample_answered", "run_judge", "agreement"]

_DEFAULT_TEXT = """You are grading an AI assistant's answer to a user's request.
Judge correctness first, then completeness and whether it follows the request's instructions.
Ignore style unless it hides the content. A wrong final answer scores at most 3.
Reply with one short sentence of reasons, then a final line exactly of the form
SCORE: N
where N is an integer from 1 (useless or wrong) to 10 (fully correct and complete)."""


@dataclass(frozen=True)
class Rubric:
    """The judge's instructions (the system message) under a version id; ``sha256`` pins the text."""

    version: str
    text: str

    def __post_init__(self) -> None:
        if not self.version or not self.version.strip():
            raise InvalidRequestError("a rubric needs a version id")
        if "SCORE:" not in self.text:
            raise InvalidRequestError("a rubric must ask for a final line 'SCORE: N' (N from 1 to 10)")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @classmethod
    def from_file(cls, path: str | Path, version: str | None = None) -> Rubric:
        """A rubric from a text file; ``version`` defaults to ``<file stem>-<first 8 hex of its hash>``."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidRequestError(f"cannot read rubric {p}: {exc.strerror or exc}") from exc
        return cls(version or f"{p.stem}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}", text)

    def meta(self) -> dict[str, str]:
        return {"rubric_version": self.version, "rubric_sha256": self.sha256}


#: The packaged rubric.
DEFAULT_RUBRIC = Rubric("default-v1", _DEFAULT_TEXT)

_SCORE = re.compile(r"SCORE:\s*\**\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_grade(text: str | None) -> tuple[float, float]:
    """The judge's reply -> (raw grade 1..10, score in [0, 1] = (raw - 1) / 9). The last
    ``SCORE: N`` line counts. :class:`ValueError` when there is none or it is out of range."""
    found = _SCORE.findall(text or "")
    if not found:
        raise ValueError("the judge's reply has no 'SCORE: N' line")
    raw = float(found[-1])
    if not 1.0 <= raw <= 10.0:
        raise ValueError(f"the judge's grade {raw:g} is outside 1..10")
    return raw, (raw - 1.0) / 9.0


def judge_messages(rubric: Rubric, prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": rubric.text},
            {"role": "user", "content": f"USER REQUEST:\n{prompt}\n\nASSISTANT ANSWER:\n{answer}"}]


def estimate_call_cost(spec: Any, rubric: Rubric, prompt: str, answer: str, max_output_tokens: int) -> float:
    """Upper estimate of one grading call: catalog prices x (input tokens + 8 per message for the
    chat framing) and ``max_output_tokens`` at the output price."""
    tokens = sum(estimate_tokens(m["content"]) + 8 for m in judge_messages(rubric, prompt, answer))
    return float(spec.cost(tokens, max_output_tokens))


def sample_answered(store: Any, n: int, *, rubric: Rubric | None = None, since: float | None = None,
                    seed: int = 0, chunk_size: int = 5000) -> tuple[list[Any], int]:
    """Up to ``n`` gradable records drawn uniformly (reservoir sampling over the log in chunks),
    leaving out requests already graded under ``rubric``. Returns (records, gradable count)."""
    done: set[str] = set()
    if rubric is not None:
        for chunk in store.training_rows(since=None, chunk_size=chunk_size):
            done.update(r["request_id"] for r in chunk
                        if r.get("origin") == "judge" and rubric.sha256 in (r.get("meta") or ""))
    rng = random.Random(seed)
    picked: list[Any] = []
    seen = 0
    for chunk in store.record_chunks(since=since, chunk_size=chunk_size, answered=True):
        for rec in chunk:
            if rec.request_id in done:
                continue
            seen += 1
            if len(picked) < n:
                picked.append(rec)
            else:
                j = rng.randrange(seen)
                if j < n:
                    picked[j] = rec
    return picked, seen


@dataclass
class JudgeReport:
    judge_model: str
    rubric: dict[str, str]
    gradable: int = 0
    sampled: int = 0
    estimated_cost_usd: float = 0.0
    max_cost_usd: float | None = None
    graded: int = 0
    spent_usd: float = 0.0
    failed: int = 0
    unparsed: int = 0
    stopped_by_cap: int = 0
    errors: list[str] = field(default_factory=list)
    feedback_ids: list[int] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["errors"] = self.errors[:20]
        return d


def run_judge(client: Any, store: Any, judge_model: str, *, sample: int, max_cost: float | None = None,
              rubric: Rubric = DEFAULT_RUBRIC, max_output_tokens: int = 256, since: float | None = None,
              seed: int = 0, dry_run: bool = False,
              progress: Callable[[str], None] | None = None) -> JudgeReport:
    """Grade up to ``sample`` logged answers with ``judge_model`` through ``client`` (a
    :class:`~router.serving.client.RoutedClient`); store ``origin=judge`` feedback in ``store``.
    See the module docstring. ``dry_run``: estimate only, no call."""
    say = progress or (lambda s: None)
    if sample < 1:
        raise InvalidRequestError(f"sample must be >= 1, got {sample}")
    if max_cost is not None and not (max_cost >= 0 and math.isfinite(max_cost)):
        raise InvalidRequestError(f"max_cost must be a number >= 0, got {max_cost!r}")
    if max_output_tokens < 1:
        raise InvalidRequestError(f"max_output_tokens must be >= 1, got {max_output_tokens}")
    if judge_model not in client.catalog:
        raise UnknownModelError(f"judge model {judge_model!r} is not in the catalog "
                                f"(known: {', '.join(client.catalog.names)})")
    spec = client.catalog[judge_model]
    rep = JudgeReport(judge_model=spec.name, rubric=rubric.meta(), max_cost_usd=max_cost)
    picked, rep.gradable = sample_answered(store, sample, rubric=rubric, since=since, seed=seed)
    rep.sampled = len(picked)
    texts = [(rec, rec.prompt if rec.prompt is not None else rec.classifier_text) for rec in picked]
    costs = [estimate_call_cost(spec, rubric, t, rec.answer, max_output_tokens) for rec, t in texts]
    rep.estimated_cost_usd = float(sum(costs))
    cap = "" if max_cost is None else f" (cap ${max_cost:.4f}" + (
        f": about {_affordable(costs, max_cost)} of them fit)" if rep.estimated_cost_usd > max_cost else ")")
    say(f"judge {spec.name}, rubric {rubric.version} ({rubric.sha256[:12]}): {rep.sampled} of {rep.gradable} "
        f"gradable answers sampled; estimated cost ${rep.estimated_cost_usd:.4f}{cap}")
    if dry_run:
        return rep
    for i, ((rec, text), est) in enumerate(zip(texts, costs)):
        if max_cost is not None and rep.spent_usd + est > max_cost:
            rep.stopped_by_cap = len(texts) - i
            say(f"stopped by the cost cap: ${rep.spent_usd:.4f} spent, the next call could cost ${est:.4f}; "
                f"{rep.stopped_by_cap} answers left ungraded")
            break
        try:
            resp = client.chat.completions.create(model=spec.name, messages=judge_messages(rubric, text, rec.answer),
                                                  max_tokens=max_output_tokens, temperature=0)
        except RouterError as exc:
            rep.failed += 1
            rep.errors.append(f"{rec.request_id}: {exc}")
            continue
        info = getattr(resp, "router", None) or {}
        rep.spent_usd += float(info.get("cost_usd") or est)
        reply = resp.choices[0].message.content if resp.choices else None
        try:
            raw, score = parse_grade(reply)
        except ValueError as exc:
            rep.unparsed += 1
            rep.errors.append(f"{rec.request_id}: {exc}")
            continue
        meta = {**rubric.meta(), "judge_model": info.get("model") or spec.name, "raw_grade": raw,
                "judge_cost_usd": info.get("cost_usd")}
        rep.feedback_ids.append(store.add_feedback(rec.request_id, score, comment=_reason(reply), origin="judge",
                                                   model=rec.model, meta=meta))
        rep.graded += 1
    rep.spent_usd = round(rep.spent_usd, 8)
    rep.agreement = agreement(store)
    return rep


def _affordable(costs: Sequence[float], cap: float) -> int:
    total, n = 0.0, 0
    for c in costs:
        if total + c > cap:
            break
        total, n = total + c, n + 1
    return n


def _reason(reply: str | None) -> str | None:
    lines = [ln for ln in (reply or "").splitlines() if ln.strip() and not _SCORE.search(ln)]
    return lines[0][:500] if lines else None


def agreement(source: Any, *, chunk_size: int = 5000) -> dict[str, Any]:
    """Judge vs human feedback on the requests that have both: ``n``, ``agree_rate`` (same side
    of 0.5), Cohen's ``kappa`` of that binary verdict, ``pearson`` of the scores (``None`` where
    undefined). ``source``: a store (read with ``training_rows``) or an iterable of
    ``(human_score, judge_score)`` pairs. Several scores of one origin on a request are averaged."""
    if hasattr(source, "training_rows"):
        human: dict[str, list[float]] = {}
        judge: dict[str, list[float]] = {}
        for chunk in source.training_rows(chunk_size=chunk_size):
            for r in chunk:
                if r.get("req_request_id") is None:
                    continue
                into = human if r.get("origin") == "human" else judge if r.get("origin") == "judge" else None
                if into is not None:
                    into.setdefault(r["request_id"], []).append(float(r["score"]))
        pairs: Iterable[tuple[float, float]] = [(sum(human[k]) / len(human[k]), sum(judge[k]) / len(judge[k]))
                                                for k in human.keys() & judge.keys()]
    else:
        pairs = list(source)
    hs, js = zip(*pairs) if pairs else ((), ())
    n = len(hs)
    if n == 0:
        return {"n": 0, "agree_rate": None, "kappa": None, "pearson": None}
    hb = [h >= 0.5 for h in hs]
    jb = [j >= 0.5 for j in js]
    po = sum(a == b for a, b in zip(hb, jb)) / n
    ph, pj = sum(hb) / n, sum(jb) / n
    pe = ph * pj + (1 - ph) * (1 - pj)
    kappa = None if pe >= 1.0 else (po - pe) / (1 - pe)
    mh, mj = sum(hs) / n, sum(js) / n
    sh = math.sqrt(sum((h - mh) ** 2 for h in hs))
    sj = math.sqrt(sum((j - mj) ** 2 for j in js))
    pearson = None if sh == 0 or sj == 0 else sum((h - mh) * (j - mj) for h, j in zip(hs, js)) / (sh * sj)
    return {"n": n, "agree_rate": round(po, 4), "kappa": None if kappa is None else round(kappa, 4),
            "pearson": None if pearson is None else round(pearson, 4)}
