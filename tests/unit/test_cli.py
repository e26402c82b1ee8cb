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
