"""The documentation's numbers are checked, not pasted.

docs/monitor_in_your_own_loop.md alternates ```python blocks and the ```text block each one printed.
This test runs the page's python blocks in order, in one namespace (as a learner runs them in one
session), captures what each prints, and compares it with the text block right after it: an exact
match once trailing whitespace is stripped. A python block with no text block after it must print
nothing, and every text block must follow a python block (no output that no code prints).

A python block whose first line is ``# docs/examples/NAME.py`` is a listing of that script, not run in
the namespace: its other lines must appear verbatim in the script, and the script runs as a
subprocess whose stdout is compared with the text block after the listing.

After a change to the package that changes the numbers, regenerate the text blocks from a run (then
read the diff: the prose around them quotes some of the numbers)::

    python tests/course/test_docs.py --write
"""

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "monitor_in_your_own_loop.md"
SCRIPT_TIMEOUT = 120          # seconds for an example script (a few seconds on two idle cores; a bound on failures)
LISTING = re.compile(r"#\s*(docs/examples/[\w/.-]+\.py)\b")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass
class Block:
    language: str          # the fence's info string: "python", "text", "bash", ...
    code: str
    line: int              # 1-based line of the opening fence in the page
    end: int               # 1-based line of the closing fence

    @property
    def script(self):
        """The example script this python block lists, or None for a block that runs in the page."""
        first = self.code.split("\n", 1)[0]
        match = LISTING.match(first)
        return match.group(1) if self.language == "python" and match else None


@dataclass
class Example:
    code: Block
    output: Block | None     # the text block right after it, if any


def read_blocks(text):
    """The page's fenced code blocks, in order."""
    blocks, lines, opened = [], text.split("\n"), None
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if not match:
            continue
        if opened is None:
            opened = (match.group(1), number)
        elif not match.group(1):
            language, start = opened
            blocks.append(Block(language, "\n".join(lines[start:number - 1]), start, number))
            opened = None
    if opened is not None:
        raise ValueError(f"{PAGE.name}: the code block opened at line {opened[1]} is never closed")
    return blocks


def read_examples(blocks):
    """Each python block with the text block right after it (None when the next block is not text)."""
    examples = []
    for index, block in enumerate(blocks):
        if block.language == "python":
            after = blocks[index + 1] if index + 1 < len(blocks) else None
            examples.append(Example(block, after if after is not None and after.language == "text" else None))
    return examples


def normalized(text):
    """Trailing whitespace stripped from every line and from the end."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


BLOCKS = read_blocks(PAGE.read_text(encoding="utf-8"))
EXAMPLES = read_examples(BLOCKS)
IN_PAGE = [example for example in EXAMPLES if example.code.script is None]
SCRIPTS = [example for example in EXAMPLES if example.code.script is not None]


def run_page(examples):
    """Run the page's blocks in order in one namespace: ``{opening line: (stdout, traceback or None)}``.
    Blocks after one that raised are not run. Torch's thread count, random generator and the warning
    filters are restored afterwards, so the page leaves the rest of the test session as it found it."""
    results, namespace = {}, {"__name__": "__docs__"}
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(), warnings.catch_warnings():
            for example in examples:
                stdout = io.StringIO()
                try:
                    with contextlib.redirect_stdout(stdout):
                        exec(compile(example.code.code, f"{PAGE}:{example.code.line + 1}", "exec"), namespace)
                except Exception:
                    results[example.code.line] = (stdout.getvalue(), traceback.format_exc())
                    break
                results[example.code.line] = (stdout.getvalue(), None)
    finally:
        torch.set_num_threads(threads)
    return results


def run_script(relative_path):
    """Run an example script from the repository's root: ``(exit status, stdout, stderr)``. It runs in a
    session of its own, so that on a timeout the processes it started are stopped with it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen([sys.executable, relative_path], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=os.name == "posix")
    try:
        stdout, stderr = process.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        stdout, stderr = process.communicate()
        return None, stdout, f"{relative_path} did not finish within {SCRIPT_TIMEOUT} s\n{stderr}"
    return process.returncode, stdout, stderr


def distributed_skip_reason():
    import torch.distributed as dist

    if not dist.is_available():
        return "this torch build has no torch.distributed"
    if not dist.is_gloo_available():
        return "this torch build has no gloo backend for CPU processes"
    return None


# --- the page's blocks -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page_run():
    return run_page(IN_PAGE)


@pytest.mark.parametrize("example", IN_PAGE, ids=[f"line{example.code.line}" for example in IN_PAGE])
def test_a_block_prints_what_the_page_shows(page_run, example):
    block = example.code
    if block.line not in page_run:
        failed = next(line for line, (_, error) in page_run.items() if error)
        pytest.fail(f"not run: the block at line {failed} of {PAGE.name} raised")
    printed, error = page_run[block.line]
    assert error is None, f"the block at line {block.line} of {PAGE.name} raised:\n{error}"
    shown = example.output.code if example.output is not None else ""
    assert normalized(printed) == normalized(shown), (
        f"the block at line {block.line} of {PAGE.name} printed\n{printed}\nbut the page shows"
        + (f" (line {example.output.line})\n{shown}" if example.output else " no output (no text block after it)"))


def test_every_output_on_the_page_follows_the_code_that_prints_it():
    orphans = [block.line for index, block in enumerate(BLOCKS)
               if block.language == "text" and (index == 0 or BLOCKS[index - 1].language != "python")]
    assert not orphans, f"text blocks at lines {orphans} of {PAGE.name} follow no python block"
    assert len(IN_PAGE) >= 10 and len(SCRIPTS) == 1


# --- example scripts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("example", SCRIPTS, ids=[example.code.script for example in SCRIPTS])
def test_the_page_lists_the_script_as_it_is(example):
    listing = example.code.code.split("\n", 1)[1]
    assert listing.strip(), f"the listing at line {example.code.line} of {PAGE.name} is empty"
    assert listing in (ROOT / example.code.script).read_text(encoding="utf-8"), (
        f"the listing at line {example.code.line} of {PAGE.name} is not a verbatim part of {example.code.script}")


@pytest.mark.parametrize("example", SCRIPTS, ids=[example.code.script for example in SCRIPTS])
def test_a_script_prints_what_the_page_shows(example):
    reason = distributed_skip_reason()
    if reason:
        pytest.skip(reason)
    assert example.output is not None, f"the listing at line {example.code.line} of {PAGE.name} has no output block"
    status, stdout, stderr = run_script(example.code.script)
    assert status == 0, f"{example.code.script} failed (exit status {status}):\n{stderr}"
    assert normalized(stdout) == normalized(example.output.code), (
        f"{example.code.script} printed\n{stdout}\nbut the page shows (line {example.output.line})\n"
        f"{example.output.code}")


# --- regenerating the outputs -----------------------------------------------------------------------
def write_outputs():
    """Rewrite the page's text blocks with what the code prints now (a text block is added after a
    block that prints but has none). Stops without writing if a block raises."""
    results = run_page(IN_PAGE)
    for line, (_, error) in results.items():
        if error:
            sys.exit(f"the block at line {line} raised:\n{error}")
    printed = {example.code.line: results[example.code.line][0] for example in IN_PAGE}
    for example in SCRIPTS:
        status, stdout, stderr = run_script(example.code.script)
        if status != 0:
            sys.exit(f"{example.code.script} failed (exit status {status}):\n{stderr}")
        printed[example.code.line] = stdout
    lines = PAGE.read_text(encoding="utf-8").split("\n")
    for example in reversed(EXAMPLES):          # from the end, so earlier line numbers stay valid
        text = normalized(printed[example.code.line])
        new = text.split("\n") if text else []
        if example.output is not None:
            lines[example.output.line:example.output.end - 1] = new
        elif new:
            lines[example.code.end:example.code.end] = ["", "```text", *new, "```"]
    PAGE.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote the outputs of {len(EXAMPLES)} blocks into {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: python {Path(__file__).relative_to(ROOT)} --write   (or run it with pytest)")
    write_outputs()
