# examples.py — finds the code examples in docs/ and README.md and runs them:
# Python and Lua blocks as scripts, C blocks compiled against the core.
"""The rules every example follows (docs/about.md says the same for writers).

- A fenced block tagged ``python``, ``lua`` or ``c`` is run. Any other fenced
  block, and every indented block, must be marked to be skipped.
- A marker is an HTML comment on the line(s) just before the block:
  ``<!-- example: skip: why -->`` skips it (the reason is required);
  ``<!-- example: exit=124 timeout=30 stderr -->`` sets the expected exit
  status (default 0), the time limit in seconds (default 60) and allows
  output on stderr (by default stderr must stay empty).
- Expected output is written in the block: a comment ``# --> text`` (Python),
  ``--> text`` (Lua) or ``// --> text`` (C), at the end of a line or on a line
  of its own, states the next line the program prints on stdout. When a block
  has any, stdout must be exactly those lines, in that order. Runs of blanks
  compare equal to one space, and ``...`` matches any text.
- A Python or Lua block is a whole program. A C block that defines ``main``
  is a whole program; one that does not is a body: its leading ``#include`` (and
  other ``#``) lines stay on top and the rest becomes the body of a function that ``main`` calls
  and that returns 0 at its end.
"""
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
RUN = {"python", "lua", "c"}
MARKER = re.compile(r"^\s*<!--\s*example:\s*(.*?)\s*-->\s*$", re.S)
EXPECT = {
    "python": re.compile(r"#\s*-->(.*)$"),
    "lua": re.compile(r"-->(.*)$"),
    "c": re.compile(r"(?://\s*-->(.*)$|/\*\s*-->(.*?)\*/)"),
}
# examples are compiled as the core is: plain C11 and POSIX, warnings as errors
C_FLAGS = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-pedantic", "-Wall", "-Wextra",
           "-Werror", "-g", "-pthread"]


class CompileError(Exception):
    pass


@dataclasses.dataclass
class Example:
    path: Path          # the Markdown file
    line: int           # 1-based line of the opening fence
    lang: str           # info string's first word ("" for indented blocks)
    code: str
    skip: Optional[str] = None    # the reason, when marked skip
    exit: int = 0
    timeout: float = 60.0
    stderr: bool = False
    problem: Optional[str] = None  # a rule the block breaks (reported as a failure)

    @property
    def id(self) -> str:
        rel = self.path.relative_to(ROOT)
        return f"{rel}:{self.line}-{self.lang or 'indented'}"


def doc_files() -> List[Path]:
    return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def _apply_marker(ex: Example, text: str) -> None:
    text = text.strip()
    if text.startswith("skip"):
        reason = text[4:].lstrip(" :").strip()
        if not reason:
            ex.problem = "a skip marker must say why: <!-- example: skip: reason -->"
        ex.skip = reason or "?"
        return
    for opt in text.split():
        key, _, val = opt.partition("=")
        try:
            if key == "exit":
                ex.exit = int(val)
            elif key == "timeout":
                ex.timeout = float(val)
            elif key == "stderr" and not val:
                ex.stderr = True
            else:
                raise ValueError
        except ValueError:
            ex.problem = f"unknown marker option {opt!r}"


def extract(path: Path) -> List[Example]:
    """Every code block of a Markdown file, with its marker applied."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    out = []
    for i, tok in enumerate(tokens):
        if tok.type not in ("fence", "code_block"):
            continue
        lang = tok.info.split()[0] if tok.type == "fence" and tok.info.strip() else ""
        ex = Example(path, tok.map[0] + 1, lang, tok.content)
        prev = tokens[i - 1] if i > 0 else None
        m = MARKER.match(prev.content) if prev is not None and prev.type == "html_block" else None
        if m:
            _apply_marker(ex, m.group(1))
        if ex.problem is None and ex.skip is None:
            if tok.type == "code_block":
                ex.problem = ("an indented block is never run: fence it with a language, "
                              "or mark it <!-- example: skip: reason -->")
            elif lang not in RUN:
                ex.problem = (f"a {lang or 'plain'} block is not run: "
                              "mark it <!-- example: skip: reason -->")
        # MkDocs (Python-Markdown) renders a fence inside a list or quote as text
        if ex.problem is None and tok.type == "fence" and tok.level > 0 and "docs" in path.parts:
            ex.problem = "a fenced block inside a list or quote does not render in MkDocs"
        out.append(ex)
    return out


def all_examples() -> List[Example]:
    return [ex for p in doc_files() for ex in extract(p)]


def expected_lines(ex: Example) -> List[str]:
    pat = EXPECT[ex.lang]
    out = []
    for line in ex.code.splitlines():
        m = pat.search(line)
        if m:
            out.append(next(g for g in m.groups() if g is not None).strip())
    return out


def _norm(s: str) -> str:
    return " ".join(s.split())


def line_matches(expected: str, actual: str) -> bool:
    parts = [re.escape(_norm(p)) for p in expected.split("...")]
    return re.fullmatch(".*".join(parts), _norm(actual), re.S) is not None


def c_program(code: str) -> str:
    """The C source for a block: a whole program, or a body wrapped in main."""
    if re.search(r"\bmain\s*\(", code):
        return code
    head, body = [], []
    for line in code.splitlines():
        top = not body and (line.startswith("#") or not line.strip())
        (head if top else body).append(line)
    # a function of its own, not main: LeakSanitizer does not see a leak
    # whose last pointer sits in main's frame, still live at exit
    return "\n".join(head + ["", "static int example(void) {"] + ["  " + ln for ln in body]
                     + ["  return 0;", "}", "", "int main(void) {", "  int (*volatile run)(void) = example;  /* not inlined */",
                                 "  return run();", "}", ""])


def environment() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python")
    # the in-tree Lua module, whether it is one C module (build/lua/ctx.so) or
    # a Lua file over a C part (lua/ctx.lua and build/lua/ctx/core.so)
    env["LUA_PATH"] = f"{ROOT}/lua/?.lua;;"
    env["LUA_CPATH"] = f"{ROOT}/build/lua/?.so;;"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def command(ex: Example, workdir: Path) -> List[str]:
    """Writes the example into workdir and returns how to run it (C: compiles it)."""
    if ex.lang == "python":
        src = workdir / "example.py"
        src.write_text(ex.code)
        python = os.environ.get("DOCS_PYTHON", sys.executable)
        # any warning is an error: an example must not teach a deprecated use
        return [python, "-W", "error", str(src)]
    if ex.lang == "lua":
        src = workdir / "example.lua"
        src.write_text(ex.code)
        # -W: warnings on, so an after_func's error cannot pass unseen
        return [os.environ.get("DOCS_LUA", "lua5.4"), "-W", str(src)]
    src = workdir / "example.c"
    src.write_text(c_program(ex.code))
    exe = workdir / "example"
    lib = os.environ.get("DOCS_LIBCTX", str(ROOT / "build" / "libctx.a"))
    cflags = os.environ.get("DOCS_CFLAGS", "").split()
    cc = os.environ.get("CC", "cc")
    objs = [str(src)]
    if re.search(r"\bint\s+main\s*\(\s*void\s*\)", ex.code):
        # a whole program's main is renamed and called from ours, for the
        # reason c_program gives (its own main, compiled without the rename)
        obj = workdir / "example.o"
        r = subprocess.run([cc, *C_FLAGS, *cflags, f"-I{ROOT / 'core'}", "-Dmain=example_main",
                            "-c", str(src), "-o", str(obj)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise CompileError(f"{ex.id}: does not compile\n{r.stdout}{r.stderr}")
        runner = workdir / "runner.c"
        runner.write_text("int example_main(void);\n"
                          "int main(void) {\n"
                          "  int (*volatile run)(void) = example_main;\n"
                          "  return run();\n"
                          "}\n")
        objs = [str(obj), str(runner)]
    r = subprocess.run([cc, *C_FLAGS, *cflags, f"-I{ROOT / 'core'}", *objs, lib,
                        "-lm", "-o", str(exe)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise CompileError(f"{ex.id}: does not compile\n{r.stdout}{r.stderr}")
    return [str(exe)]
