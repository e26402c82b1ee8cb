import json

import numpy as np
import pytest

from router import DataError
from router.training.data.outcomes import read_outcomes, read_routellm, read_routerbench, strip_few_shot

RB_HEADER = (",sample_id,prompt,eval_name,model-a,model-b,model-a|model_response,model-b|model_response,"
             "model-a|total_cost,model-b|total_cost,oracle_model_to_route_to\n")


def rb_row(i, prompt, a, b, ca="0.001", cb="0.0001"):
    return f'{i},s{i},"{prompt}",arc,{a},{b},"ra","rb",{ca},{cb},model-a\n'


def test_routerbench_long_form_keeps_prompts_as_sent_and_skips_missing(tmp_path):
    p = tmp_path / "rb.csv"
    few = "['Q1?\\nA) x\\nB) y\\nAnswer:\\nA\\n\\nReal question?\\nA) p\\nB) q\\nAnswer:']"
    p.write_text(RB_HEADER + rb_row(0, few, "1.0", "0.0") + rb_row(1, "['Write code']", "", "1.0", ca=""))
    df = read_routerbench(p)
    assert len(df) == 3  # the missing model-a score of row 1 is skipped
    first = df[df.prompt_id == "s0"].iloc[0]
    assert first.prompt.startswith("Q1?") and first.prompt.endswith("Real question?\nA) p\nB) q\nAnswer:")
    stripped = read_routerbench(p, few_shot="strip")
    assert stripped[stripped.prompt_id == "s0"].prompt.iloc[0].startswith("Real question?")
    with pytest.raises(ValueError, match="few_shot"):
        read_routerbench(p, few_shot="drop")
    assert df[(df.prompt_id == "s0") & (df.model == "model-a")].cost.item() == pytest.approx(0.001)
    assert set(df.source) == {"arc"}


@pytest.mark.parametrize(
    "row, message",
    [
        (rb_row(0, "['ok']", "maybe", "1"), "is not a number"),
        (rb_row(0, "['ok']", "1.5", "1"), "outside [0, 1]"),
        (rb_row(0, "['ok']", "1", "1", ca="lots"), "cost 'lots'"),
        (rb_row(0, "[unclosed", "1", "1"), "list literal"),
    ],
)
def test_routerbench_bad_rows_name_file_and_line(tmp_path, row, message):
    p = tmp_path / "rb.csv"
    p.write_text(RB_HEADER + rb_row(9, "['fine']", "1", "0") + row)
    with pytest.raises(DataError) as err:
        read_routerbench(p)
    assert f"{p}:3:" in str(err.value) and message in str(err.value)


def test_routellm_aliases_and_booleans(tmp_path):
    p = tmp_path / "mmlu_x.csv"
    p.write_text("prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n"
                 '"What is 2+2?\nA. 4",True,False\n')
    df = read_routellm(p)
    assert sorted(df.model) == ["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"]
    assert df.set_index("model").score.to_dict() == {"mistralai/mixtral-8x7b-chat": 1.0, "gpt-4-1106-preview": 0.0}
    assert np.isnan(df.cost).all() and df.source.iloc[0] == "mmlu_x"
    custom = read_routellm(p, aliases={})
    assert "mistralai/Mixtral-8x7B-Instruct-v0.1" in set(custom.model)


def test_jsonl_and_dispatch(tmp_path):
    j = tmp_path / "o.jsonl"
    j.write_text(json.dumps({"prompt_id": "1", "prompt": "hi", "model": "m", "score": 0.5, "cost": 0.01}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt_id": "1", "prompt": "hi", "model": "m", "score": 2}) + "\n")
    unknown = tmp_path / "x.csv"
    unknown.write_text("a,b\n1,2\n")
    assert read_outcomes([j]).score.item() == 0.5
    with pytest.raises(DataError, match=r"bad.jsonl:1: score 2"):
        read_outcomes([bad])
    with pytest.raises(DataError, match="unrecognised outcome format"):
        read_outcomes([unknown])
    with pytest.raises(DataError, match="no such outcome file"):
        read_outcomes([tmp_path / "missing.csv"])
    with pytest.raises(DataError, match="no outcome files"):
        read_outcomes([])


def test_strip_few_shot_leaves_plain_prompts_alone():
    assert strip_few_shot("Just a question?") == "Just a question?"


def test_routerbench_keeps_answers_and_jsonl_answer_is_optional(tmp_path):
    p = tmp_path / "rb.csv"
    p.write_text(RB_HEADER + "0,s0,\"['Q?']\",arc,1,0,\"['B\\n']\",,0.001,0.0001,model-a\n")
    df = read_routerbench(p).set_index("model")
    assert df.answer["model-a"] == "B\n"  # the list literal is unwrapped
    assert df.answer["model-b"] is None  # an empty response cell is no answer
    j = tmp_path / "o.jsonl"
    j.write_text(json.dumps({"prompt_id": "1", "prompt": "hi", "model": "m", "score": 1, "answer": "hello"}) + "\n"
                 + json.dumps({"prompt_id": "2", "prompt": "hi", "model": "m", "score": 0}) + "\n")
    assert read_outcomes([j]).answer.tolist() == ["hello", None]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt_id": "1", "prompt": "hi", "model": "m", "score": 1, "answer": 3}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: answer must be a string"):
        read_outcomes([bad])
