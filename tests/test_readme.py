"""README's commands are the first thing a user runs: every one parses with the real argument parser,
and the cheap ones run (outputs redirected into a temporary folder) and must succeed.

A README example that drifts from the CLI (``--model orig=…`` once failed with "unknown model") fails
here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fusion_tf.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OUTPUT_FLAGS = ("-o", "--out", "--run-dir", "--work")


def readme_commands() -> list[tuple[str, list[str]]]:
    """``(line, argv for fusion_tf.cli.main)`` for each command in README's ```bash blocks."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            for part in (p.strip() for p in line.split("&&")):
                words = shlex.split(part)
                if words[:1] == ["fusion-tf"]:
                    found.append((part, words[1:]))
                elif words[:2] == ["python", "train.py"]:
                    found.append((part, ["train", *words[2:]]))
                elif words[:2] == ["python", "evaluate.py"] and len(words) > 2:
                    found.append((part, ["evaluate", *words[2:]]))
    return found


COMMANDS = readme_commands()


def test_readme_has_the_documented_commands():
    lines = [line for line, _ in COMMANDS]
    assert any(line.startswith("fusion-tf fuse datasets/samples/") for line in lines)  # the quick start
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("line,argv", COMMANDS, ids=[line[:60] for line, _ in COMMANDS])
def test_readme_command_parses(line, argv):
    args = build_parser(argv[0]).parse_args(argv)
    assert callable(args.func)
    if argv[0] == "evaluate":
        from fusion_tf.evaluation import grouping

        grouping.parse_models(args.model)  # labels and model names as the run would read them


def _redirected(argv: list[str], tmp: Path) -> list[str]:
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word in OUTPUT_FLAGS:
            out[i + 1] = str(tmp / Path(out[i + 1]).name)
    return out


CHEAP = [
    "fusion-tf fuse datasets/samples/lytro-01-A.jpg datasets/samples/lytro-01-B.jpg -o fused.png",
    "fusion-tf export --model mffgan -o serving/mffgan/1",
]


@pytest.mark.parametrize("line", CHEAP)
def test_cheap_readme_commands_run(line, tmp_path, monkeypatch, capsys):
    argv = dict(COMMANDS)[line]  # KeyError: README no longer shows this command
    monkeypatch.chdir(ROOT)
    assert main(_redirected(argv, tmp_path)) == 0, capsys.readouterr().err
    assert any(tmp_path.iterdir())


def test_readme_evaluate_with_two_weightings_of_one_model_runs(shared, tmp_path, monkeypatch, capsys):
    """The side-by-side example (ours vs the original TF1 weights) runs, on two metrics for speed."""
    line = next(line for line, argv in COMMANDS if "orig:mffgan=" in line)
    monkeypatch.chdir(ROOT)
    argv = _redirected(dict(COMMANDS)[line], tmp_path) + ["--metrics", "qabf,en", "--no-plots", "--workers", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    per_image = (tmp_path / "mffgan" / "per_image.csv").read_text()
    assert {row.split(",")[0] for row in per_image.splitlines()[1:]} == {"mffgan", "orig"}
