"""Per-model outcome data in one long form.

Columns of the frame every importer returns: ``prompt_id, prompt, model, score`` (in [0, 1]),
``cost`` (USD for that call, NaN when unknown), ``prompt_tokens``, ``completion_tokens`` (NaN
when unknown), ``source`` (benchmark / collection name).

Formats:
* RouterBench wide CSV: ``sample_id, prompt, eval_name``, a score column per model,
  ``<model>|total_cost``, ``<model>|model_response`` (kept as ``answer``; a Python list literal
  like the prompt). ``prompt`` is a Python list literal whose few-shot examples come first; it is
  kept as sent (the router strips the examples from what it reads, in training and serving
  alike: :mod:`router.text.fewshot`).
* RouteLLM per-model CSV: ``prompt, <model>, <model>`` with True/False.
* JSONL: one object a line with the long-form keys (``prompt_id``, ``prompt``, ``model``,
  ``score`` required; ``cost``, ``prompt_tokens``, ``completion_tokens``, ``source``, ``answer``
  optional; ``answer`` is what the learning loop's ``--store-responses`` writes).
"""

from __future__ import annotations

import ast
import csv
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ...text.fewshot import strip_few_shot

from .jsonl import iter_objects

__all__ = [
    "COLUMNS",
    "DEFAULT_ALIASES",
    "open_routerbench_csv",
    "read_routerbench",
    "read_routellm",
    "read_outcomes_jsonl",
    "read_outcomes",
    "strip_few_shot",
    "default_outcome_files",
]

COLUMNS = ["prompt_id", "prompt", "model", "score", "cost", "prompt_tokens", "completion_tokens", "source", "answer"]
#: Names one model goes by in different data sets -> the name used in catalogs.
DEFAULT_ALIASES: Mapping[str, str] = {
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/mixtral-8x7b-chat",
}
_RB_REQUIRED = ("sample_id", "prompt", "eval_name")


def _answer_from_literal(raw: str | None) -> str | None:
    """A RouterBench ``model_response`` cell -> the answer text (``None`` when empty). The cell is
    a Python list literal of strings (joined) or plain text (kept as it is)."""
    raw = (raw or "").strip()
    if not raw or raw.lower() == "nan":
        return None
    if raw.startswith("["):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n\n".join(value)
    return raw


def _prompt_from_literal(raw: str, path: Path, line: int, few_shot: str = "keep") -> str:
    raw = raw.strip()
    if raw.startswith("["):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise DataError("prompt is not a valid Python list literal", path=str(path), line=line) from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
            raise DataError("prompt list must hold strings", path=str(path), line=line)
        raw = "\n\n".join(value)
    if not raw.strip():
        raise DataError("empty prompt", path=str(path), line=line)
    return strip_few_shot(raw) if few_shot == "strip" else raw


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Long-form rows -> the frame; a missing answer is ``None`` (not NaN) in every reader."""
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["answer"] = df["answer"].astype(object).where(df["answer"].notna(), None)
    return df


def _score(value: str, path: Path, line: int, column: str) -> float | None:
    v = value.strip()
    if v == "" or v.lower() == "nan":
        return None
    if v in ("True", "true"):
        return 1.0
    if v in ("False", "false"):
        return 0.0
    try:
        s = float(v)
    except ValueError:
        raise DataError(f"score {v!r} in column {column!r} is not a number", path=str(path), line=line) from None
    if not 0.0 <= s <= 1.0:
        raise DataError(f"score {s} in column {column!r} is outside [0, 1]", path=str(path), line=line)
    return s


def _open_csv(path: Path, required: Sequence[str], not_models: Sequence[str]):
    """Open a wide outcome CSV -> (file, reader, model columns). The header must hold every
    ``required`` column and at least one model column (any column without ``|`` that is not in
    ``not_models``); otherwise a DataError names the file and line 1."""
    csv.field_size_limit(sys.maxsize)
    if not path.is_file():
        raise DataError("no such outcome file", path=str(path))
    f = open(path, encoding="utf-8", newline="")
    reader = csv.DictReader(f)
    fields = reader.fieldnames or []
    missing = [c for c in required if c not in fields]
    models = [c for c in fields if c and "|" not in c and c not in not_models]
    if missing or not models:
        f.close()
        raise DataError(f"missing column {missing[0]!r}" if missing else "no model score columns",
                        path=str(path), line=1)
    return f, reader, models


def open_routerbench_csv(path: Path):
    """Open a RouterBench wide CSV -> (file, ``csv.DictReader``, model names), the header checked
    (a DataError names the file when a column is missing); rows keep every column, model
    responses and costs included."""
    return _open_csv(path, _RB_REQUIRED, (*_RB_REQUIRED, "oracle_model_to_route_to"))


def read_routerbench(path: str | Path, aliases: Mapping[str, str] = DEFAULT_ALIASES, *,
                     few_shot: str = "keep") -> pd.DataFrame:
    """One RouterBench wide CSV -> long form. Cells without a score are skipped. ``few_shot``:
    ``"keep"`` (the prompt as sent to the models; the router strips the examples itself, see
    :mod:`router.text.fewshot`) or ``"strip"`` (the final question only, the old reading)."""
    if few_shot not in ("keep", "strip"):
        raise ValueError(f"few_shot must be 'keep' or 'strip', got {few_shot!r}")
    path = Path(path)
    f, reader, models = open_routerbench_csv(path)
    rows = []
    with f:
        for rec in reader:
            line = reader.line_num
            prompt = _prompt_from_literal(rec.get("prompt") or "", path, line, few_shot)
            pid = (rec.get("sample_id") or "").strip()
            if not pid:
                raise DataError("missing sample_id", path=str(path), line=line)
            for m in models:
                s = _score(rec.get(m) or "", path, line, m)
                if s is None:
                    continue
                cost_raw = (rec.get(f"{m}|total_cost") or "").strip()
                try:
                    cost = float(cost_raw) if cost_raw else math.nan
                except ValueError:
                    raise DataError(f"cost {cost_raw!r} of {m!r} is not a number", path=str(path), line=line) from None
                if cost < 0:
                    raise DataError(f"negative cost of {m!r}", path=str(path), line=line)
                rows.append((pid, prompt, aliases.get(m, m), s, cost, math.nan, math.nan,
                             (rec.get("eval_name") or path.stem).strip(),
                             _answer_from_literal(rec.get(f"{m}|model_response"))))
    return _frame(rows)


def read_routellm(path: str | Path, aliases: Mapping[str, str] = DEFAULT_ALIASES) -> pd.DataFrame:
    """One RouteLLM per-benchmark CSV (``prompt`` + one True/False column per model)."""
    path = Path(path)
    f, reader, models = _open_csv(path, ("prompt",), ("prompt",))
    rows = []
    with f:
        for i, rec in enumerate(reader):
            line = reader.line_num
            prompt = (rec.get("prompt") or "").strip()
            if not prompt:
                raise DataError("empty prompt", path=str(path), line=line)
            for m in models:
                s = _score(rec.get(m) or "", path, line, m)
                if s is not None:
                    rows.append((f"{path.stem}:{i}", prompt, aliases.get(m, m), s, math.nan, math.nan, math.nan,
                                 path.stem, None))
    return _frame(rows)


def read_outcomes_jsonl(path: str | Path, aliases: Mapping[str, str] = DEFAULT_ALIASES) -> pd.DataFrame:
    path = Path(path)
    rows = []
    for line_no, obj in iter_objects(path, "outcome file"):
        for key in ("prompt_id", "prompt", "model", "score"):
            if obj.get(key) in (None, ""):
                raise DataError(f"missing {key!r}", path=str(path), line=line_no)
        s = obj["score"]
        if isinstance(s, bool):
            s = float(s)
        if not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise DataError(f"score {s!r} is not a number in [0, 1]", path=str(path), line=line_no)
        nums = []
        for key in ("cost", "prompt_tokens", "completion_tokens"):
            v = obj.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise DataError(f"{key} {v!r} must be a non-negative number", path=str(path), line=line_no)
            nums.append(math.nan if v is None else float(v))
        answer = obj.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise DataError(f"answer must be a string, got {type(answer).__name__}", path=str(path), line=line_no)
        rows.append((str(obj["prompt_id"]), str(obj["prompt"]), aliases.get(obj["model"], obj["model"]),
                     float(s), *nums, str(obj.get("source") or path.stem), answer))
    return _frame(rows)


def read_outcomes(paths: Iterable[str | Path], aliases: Mapping[str, str] = DEFAULT_ALIASES) -> pd.DataFrame:
    """Read any mix of the three formats (by extension and header) into one long frame."""
    frames = []
    for p in paths:
        path = Path(p)
        if path.suffix == ".jsonl":
            frames.append(read_outcomes_jsonl(path, aliases))
            continue
        if not path.is_file():
            raise DataError("no such outcome file", path=str(path))
        with open(path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), [])
        if "eval_name" in header:
            frames.append(read_routerbench(path, aliases))
        elif "prompt" in header:
            frames.append(read_routellm(path, aliases))
        else:
            raise DataError("unrecognised outcome format (need RouterBench, RouteLLM CSV or JSONL)",
                            path=str(path), line=1)
    if not frames:
        raise DataError("no outcome files given")
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        raise DataError("the outcome files hold no scored rows")
    dup = df.duplicated(["prompt_id", "model"], keep="last")
    return df[~dup].reset_index(drop=True)


def default_outcome_files(shared: Path) -> list[Path]:
    """RouterBench train CSVs and RouteLLM MMLU CSVs under ``shared/outcomes`` (when present)."""
    out = sorted((shared / "outcomes" / "routerbench").glob("*_train.csv"))
    return out + sorted((shared / "outcomes" / "routellm_mmlu").glob("mmlu_*.csv"))
