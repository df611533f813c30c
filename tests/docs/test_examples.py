# test_examples.py — runs every code example of docs/ and README.md (the rules
# are in examples.py) and checks its exit status, stdout and stderr.
import subprocess

import pytest

import examples

ALL = examples.all_examples()


@pytest.mark.parametrize("ex", ALL, ids=[ex.id for ex in ALL])
def test_example(ex: examples.Example, tmp_path) -> None:
    if ex.problem:
        pytest.fail(f"{ex.id}: {ex.problem}", pytrace=False)
    if ex.skip is not None:
        pytest.skip(ex.skip)
    try:
        cmd = examples.command(ex, tmp_path)
    except examples.CompileError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        r = subprocess.run(cmd, cwd=tmp_path, env=examples.environment(), capture_output=True,
                           text=True, errors="replace", timeout=ex.timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{ex.id}: still running after {ex.timeout} s\nstdout:\n{e.stdout}\n"
                    f"stderr:\n{e.stderr}", pytrace=False)
    report = f"\n--- stdout:\n{r.stdout}--- stderr:\n{r.stderr}"
    if r.returncode != ex.exit:
        pytest.fail(f"{ex.id}: exit status {r.returncode}, expected {ex.exit}{report}",
                    pytrace=False)
    if r.stderr and not ex.stderr:
        pytest.fail(f"{ex.id}: wrote to stderr{report}", pytrace=False)
    want = examples.expected_lines(ex)
    if want:
        got = r.stdout.splitlines()
        ok = len(got) == len(want) and all(map(examples.line_matches, want, got))
        if not ok:
            diff = "\n".join(f"  expected: {w!r}" for w in want)
            pytest.fail(f"{ex.id}: stdout differs\n{diff}{report}", pytrace=False)


def test_examples_found() -> None:
    """The extraction itself works: each language has examples to run."""
    langs = {ex.lang for ex in ALL if ex.skip is None}
    assert {"python", "lua", "c"} <= langs


def test_rules() -> None:
    """The runner's own rules, on made-up blocks."""
    assert examples.line_matches("context canceled  x", "context canceled\tx")
    assert examples.line_matches("1.9... s", "1.99873 s")
    assert not examples.line_matches("true", "false")
    ex = examples.Example(examples.ROOT / "README.md", 1, "lua",
                          'print(1) --> 1\n-- no\nprint(2, 3)\n  --> 2  3\n')
    assert examples.expected_lines(ex) == ["1", "2  3"]
    ex.lang, ex.code = "c", 'puts("a"); // --> a\nputs("b"); /* --> b */\n'
    assert examples.expected_lines(ex) == ["a", "b"]
    body = examples.c_program('#include <stdio.h>\nputs("x");\n')
    assert body.startswith("#include <stdio.h>") and "main(void)" in body
