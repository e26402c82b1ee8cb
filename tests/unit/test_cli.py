import json
import subprocess
import sys

import pytest

from router.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_route_json(capsys):
    code, out, _ = run(capsys, "route", "--json", "--tier", "budget", "Classify this tweet as positive or negative")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["model"] == "glm-4-flash" and rows[0]["tier"] == "budget"


def test_route_text_and_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("Write a Python function to merge sort an array\nhi\n"))
    code, out, _ = run(capsys, "route", "-")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("deepseek-v4-pro\tcode")


def test_classify_json(capsys):
    code, out, _ = run(capsys, "classify", "--json", "Explain the Monty Hall problem with math")
    assert code == 0
    assert json.loads(out)[0]["task"] == "reasoning"


def test_models_lists_and_validates(capsys, tmp_path):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "glm-4v" in out and "valid" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  x: {pricing: {input_per_1m: -1, output_per_1m: 1}}\n")
    code, _, err = run(capsys, "models", "--catalog", str(bad))
    assert code == 1 and "error" in err and "'x'" in err


def test_router_errors_exit_1(capsys, tmp_path):
    code, _, err = run(capsys, "route", "--router", str(tmp_path / "missing"), "hi")
    assert code == 1 and "no router folder" in err
    code, _, err = run(capsys, "route", "--max-cost", "0", "hi")
    assert code == 1 and "cost cap" in err


@pytest.mark.parametrize("argv", [[], ["route"], ["route", "--min-quality", "3", "hi"], ["bogus"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_console_script_help():
    for sub in ([], ["route"], ["classify"], ["models"]):
        out = subprocess.run([sys.executable, "-m", "router", *sub, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage: router" in out.stdout


def test_demo_prints_savings(capsys):
    from router.training.demo import main as demo

    assert demo(["--cold-start", "--tier", "balanced"]) == 0
    out = capsys.readouterr().out
    assert "Write a Python function to merge sort an array" in out
    assert "savings:" in out and "all on gpt-4o" in out


# -- the newcomer's small edges (issue 14) ------------------------------------------------------
def _options_by_command(monkeypatch):
    """{subcommand prog: {option: help}} recorded while the real parser is built."""
    import argparse

    from router.cli.main import build_parser

    seen: dict[str, dict[str, str | None]] = {}
    original = argparse.ArgumentParser.add_argument

    def recording(self, *names, **kw):
        if names and names[0].startswith("-"):
            seen.setdefault(self.prog, {})[names[-1]] = kw.get("help")
        return original(self, *names, **kw)

    monkeypatch.setattr(argparse.ArgumentParser, "add_argument", recording)
    build_parser()
    return {prog: opts for prog, opts in seen.items() if prog != "router"}


def test_every_option_has_help_and_every_subcommand_takes_quiet(monkeypatch):
    commands = _options_by_command(monkeypatch)
    assert {"router route", "router serve", "router stats", "router train", "router eval-tasks"} <= set(commands)
    missing = [f"{prog} {opt}" for prog, opts in commands.items() for opt, text in opts.items() if not text]
    assert missing == []
    groups = {prog for prog, opts in commands.items() if set(opts) <= {"-h", "--help"}}  # e.g. `router feedback ACTION`
    assert groups <= {"router feedback"}
    assert [prog for prog, opts in commands.items() if "--quiet" not in opts and prog not in groups] == []


@pytest.mark.parametrize("flag,value,expected", [
    ("--min-quality", "abc", "argument --min-quality: must be a number, got 'abc'"),
    ("--max-cost", "-1", "argument --max-cost: must be a number >= 0, got '-1'"),
    ("--max-tokens", "1.5", "argument --max-tokens: must be an integer, got '1.5'"),
])
def test_bad_numbers_are_named(capsys, flag, value, expected):
    with pytest.raises(SystemExit) as exc:
        main(["route", flag, value, "hi"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expected in err and "_probability" not in err


def test_empty_stdin_is_an_error(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n  \n"))
    code, out, err = run(capsys, "route", "-")
    assert code == 1 and out == "" and "no prompts: stdin was empty" in err


def test_max_tokens_beyond_every_window_is_an_error_naming_it(capsys):
    code, out, err = run(capsys, "route", "--max-tokens", "200000", "hi")
    assert code == 1 and out == "" and "context window" in err and "128,000 tokens" in err
    code, out, _ = run(capsys, "route", "--max-tokens", "1000", "hi")
    assert code == 0 and out


def test_tiny_amounts_are_not_shown_as_zero():
    from router.savings import format_usd

    assert format_usd(2e-9) == "$2e-09" and format_usd(0.0) == "$0.000000"
    assert format_usd(0.0000851) == "$0.000085"


def test_gate_at_zero_says_the_regex_never_answers():
    from router.training.fit.tasks import describe_gate

    assert "regex then never answers" in describe_gate(0.0)
    assert "below it the regex answers" in describe_gate(0.35)


def test_route_without_router_falls_back_with_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ROUTER_MODEL", str(tmp_path / "gone"))
    code, out, err = run(capsys, "route", "Classify this tweet as positive or negative")
    assert code == 0 and out.startswith("glm-4-flash")
    assert len(err.strip().splitlines()) == 1 and "cold-start router" in err and "gone" in err
    code, out, err = run(capsys, "route", "--quiet", "Classify this tweet as positive or negative")
    assert code == 0 and err == ""


def test_demo_says_costs_are_estimated_and_prints_measured_ones(capsys, tmp_path):
    from router.serving.usage.store import UsageStore
    from router.training.demo import main as demo
    from tests.support.usage_records import make_record

    url = f"sqlite:///{tmp_path}/usage.db"
    assert demo(["--cold-start", "--tier", "budget", "--usage-db", url]) == 0
    out = capsys.readouterr().out
    assert "output lengths assumed per task" in out and "measured on real requests" not in out
    store = UsageStore(url)
    store.log(make_record("a", model="gpt-4o-mini", cost_usd=0.002))
    store.close()
    assert demo(["--cold-start", "--tier", "budget", "--usage-db", url]) == 0
    out = capsys.readouterr().out
    assert "measured on real requests (usage log)" in out and "requests: 1" in out


def test_bulk_routing_from_stdin_reports_progress_and_keeps_order(capsys, monkeypatch):
    import io

    prompts = [f"Translate 'cat number {i}' to French" if i % 2 else f"hello {i}" for i in range(300)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(prompts) + "\n"))
    code, out, err = run(capsys, "route", "--json", "-")
    rows = json.loads(out)
    assert code == 0 and [r["prompt"] for r in rows] == prompts
    assert "routing 300 prompts: 0/300 ..." in err and "routing 300 prompts: 300/300 (100%)" in err
