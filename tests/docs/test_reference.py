# test_reference.py — the references cover the whole API: every public name of
# ctx.h, of the Python package and of the Lua module has a heading and a run example.
import json
import os
import re
import subprocess
import sys

from markdown_it import MarkdownIt

import examples

ROOT = examples.ROOT
# names the SPEC fixes, checked even while the code lacks one of them
PY_SPEC = {
    "background", "todo", "with_cancel", "with_cancel_cause", "with_deadline",
    "with_deadline_cause", "with_timeout", "with_timeout_cause", "with_value",
    "without_cancel", "after_func", "cause", "ContextError", "Canceled",
    "DeadlineExceeded", "SignalReceived", "Context", "current", "scope", "timeout",
    "deadline", "shield", "sleep", "run_process", "on_signal", "__version__",
}
PY_METHODS = {"done", "wait", "err", "cause", "check", "deadline", "remaining", "value",
              "fileno", "wait_async", "cancel"}
LUA_SPEC = {
    "background", "todo", "with_cancel", "with_cancel_cause", "with_deadline",
    "with_deadline_cause", "with_timeout", "with_timeout_cause", "with_value",
    "without_cancel", "after_func", "cause", "canceled", "deadline_exceeded", "now",
    "sleep", "run", "execute", "_VERSION",
}
LUA_METHODS = {"done", "wait", "err", "cause", "deadline", "remaining", "value"}


def headings(pages):
    out = []
    for page in pages:
        tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
        out += [tokens[i + 1].content.replace("\\", "") for i, t in enumerate(tokens)
                if t.type == "heading_open"]
    return out


def run_blocks(lang):
    return [ex.code for ex in examples.all_examples()
            if ex.lang == lang and ex.skip is None and ex.problem is None]


def missing(names, heads, blocks, head_form, code_form):
    """Names without a heading (in head_form) or without a run example."""
    out = []
    for name in sorted(names):
        h = re.compile(head_form.format(re.escape(name)))
        c = re.compile(code_form.format(re.escape(name)))
        if not any(h.search(x) for x in heads):
            out.append(f"{name}: no heading")
        if not any(c.search(b) for b in blocks):
            out.append(f"{name}: in no example that runs")
    return out


def test_c_reference_covers_ctx_h() -> None:
    header = (ROOT / "core" / "ctx.h").read_text()
    names = set(re.findall(r"CTX_API\s+[\w\s]+?\**\s*\b(ctx_\w+)\s*\(", header))
    assert len(names) > 50, "the header parse found too few functions"
    heads = headings(sorted((ROOT / "docs" / "c").glob("*.md")))
    gaps = missing(names, heads, run_blocks("c"), r"\b{}\b", r"\b{}\b")
    assert not gaps, "C reference:\n" + "\n".join(gaps)


def test_python_reference_covers_the_package() -> None:
    python = os.environ.get("DOCS_PYTHON", sys.executable)
    r = subprocess.run([python, "-c", "import ctx, json; print(json.dumps(ctx.__all__))"],
                       env=examples.environment(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names = PY_SPEC | set(json.loads(r.stdout))
    heads = headings(sorted((ROOT / "docs" / "python").glob("*.md")))
    blocks = run_blocks("python")
    gaps = missing(names, heads, blocks, r"\bctx\.{}\b", r"\bctx\.{}\b")
    gaps += missing(PY_METHODS, heads, blocks, r"\bc\.{}\b", r"\.{}\(")
    assert not gaps, "Python reference:\n" + "\n".join(gaps)


def test_lua_reference_covers_the_module() -> None:
    lua = os.environ.get("DOCS_LUA", "lua5.4")
    code = 'for k in pairs(require "ctx") do print(k) end'
    r = subprocess.run([lua, "-e", code], env=examples.environment(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    public = {n for n in r.stdout.split() if not n.startswith("_") or n == "_VERSION"}
    names = LUA_SPEC | public
    heads = headings(sorted((ROOT / "docs" / "lua").glob("*.md")))
    blocks = run_blocks("lua")
    gaps = missing(names, heads, blocks, r"\bctx\.{}\b", r"\bctx\.{}\b")
    gaps += missing(LUA_METHODS, heads, blocks, r"\bc:{}\b", r":{}\(")
    assert not gaps, "Lua reference:\n" + "\n".join(gaps)

