"""Every block the README (and each example DAG's ``doc_md``) tells a reader to run runs as written.

The fenced blocks are read from the documents; how each one is checked is set by an HTML comment on
the line just before its fence (markdown renderers hide it):

- no comment: the block runs. ``python`` blocks with ``python``, ``bash`` blocks with ``bash -e``,
  each in a process of its own; ``json`` blocks are parsed. It passes when it exits with 0.
- ``<!-- readme-check: file PATH -->``: a file the reader is told to save (a DAG, a test, a config).
  It is written to ``PATH`` in the working folder before any block of the document runs, and its
  syntax is checked.
- ``<!-- readme-check: serve -->``: a command that serves until stopped. It must print a line within
  a minute, and exit with 0 on Ctrl-C (SIGINT to its process group).
- ``<!-- readme-check: syntax: REASON -->``: the block needs what a test cannot have (a HubSpot
  account, cloud storage, a Celery cluster, installing packages, or ``make test`` itself). Only its
  syntax is checked: ``compile()`` for python, ``bash -n`` for bash, parsing for json.
- ``<!-- readme-check: fragment: REASON -->``: not standalone (``...`` placeholders, names from
  another block). Only its syntax is checked.

The blocks of one document share one working folder (an empty temporary folder, plus the ``file``
blocks) and one fresh Airflow home with a migrated metadata database (``AIRFLOW_HOME``); they do not
share a process, so a block may use another block's files but not its variables. A command that an
earlier block runs already (the README and ``example_hubspot_scheduled`` show the same ``airflow
pools set``) runs once. The environment is
the test session's without any ``AIRFLOW_*`` variable, with this virtual environment's ``bin``
first on ``PATH`` (``python``, ``airflow``, ``pytest``, ``hubspot-standin``). There is no HubSpot
account: a block that talks to HubSpot starts the stand-in (the pytest fixtures, ``HubSpotStandIn``
or ``hubspot-standin``), or is marked ``syntax``.

The README's "Testing your own DAGs with the stand-in" walk-through is a new user's first test: its
DAG and test are ``file`` blocks, and its ``bash`` block migrates an Airflow home of its own and runs
that test with pytest.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "example_dags").glob("example_*.py"))]
KINDS = ("run", "file", "serve", "syntax", "fragment")
#: Fence language -> the language its block is run and checked as.
LANGUAGES = {
    "python": "python",
    "py": "python",
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
    "json": "json",
}
BLOCK_TIMEOUT_S = 300
SERVE_START_TIMEOUT_S = 60

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*readme-check:\s*(?P<kind>[a-z]+)\s*:?\s*(?P<arg>.*?)\s*-->\s*$")
_MARKER_START = re.compile(r"^\s*<!--\s*readme-check")

# The database of the session's Airflow home, copied now: conftest.py has just migrated it, and
# collection comes before any test writes to it. A copy costs milliseconds, a migration seconds.
_MIGRATED_DB = (Path(os.environ["AIRFLOW_HOME"]) / "airflow.db").read_bytes()


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence, 1-based
    language: str  # "python", "bash", "json", or as written when unknown
    kind: str
    argument: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def _markdown_of(document: Path) -> tuple[str, int]:
    """The document's markdown and the line number of its first line in the file."""
    text = document.read_text(encoding="utf-8")
    if document.suffix == ".md":
        return text, 1
    # An example DAG: its doc_md is the module docstring, which starts on the line after the quotes.
    module = ast.parse(text)
    node = module.body[0]
    docstring = ast.get_docstring(module, clean=False)
    assert docstring is not None and isinstance(node, ast.Expr), f"{document} has no module docstring"
    return docstring.removeprefix("\n"), node.lineno + 1


def parse_blocks(document: Path) -> list[Block]:
    """The fenced blocks of ``document``, with how each is to be checked."""
    markdown, first_line = _markdown_of(document)
    return parse_markdown(markdown, document, first_line)


def parse_markdown(markdown: str, document: Path, first_line: int = 1) -> list[Block]:
    lines = markdown.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        where = f"{document}:{first_line + index}"
        if _MARKER_START.match(lines[index]):
            after = lines[index + 1] if index + 1 < len(lines) else ""
            if not _MARKER.match(lines[index]) or not _FENCE.match(after):
                raise ValueError(
                    f"{where}: write '<!-- readme-check: KIND [argument] -->' on the line just before a fence"
                )
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        marker = _MARKER.match(lines[index - 1]) if index else None
        kind, argument = (marker["kind"], marker["arg"]) if marker else ("run", "")
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown readme-check {kind!r}, not one of {KINDS}")
        if kind == "file" and not argument:
            raise ValueError(f"{where}: 'file' needs the path the block is saved at")
        if not fence["lang"] and kind != "fragment":
            raise ValueError(f"{where}: give the fence a language (or mark it fragment)")
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"{where}: the fence is never closed")
        indent = len(fence["indent"])
        code = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        language = LANGUAGES.get(fence["lang"], fence["lang"])
        blocks.append(Block(document, first_line + index, language, kind, argument, code))
        index = end + 1
    return blocks


BLOCKS = [block for document in DOCUMENTS for block in parse_blocks(document)]


@dataclass(frozen=True)
class Workspace:
    folder: Path
    env: dict[str, str]
    scripts: Path


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory):
    """One working folder and Airflow home per document, made when its first block needs them."""
    made: dict[Path, Workspace] = {}

    def workspace(document: Path) -> Workspace:
        if document not in made:
            root = tmp_path_factory.mktemp(document.stem.lower())
            folder, home, scripts = root / "project", root / "airflow-home", root / "blocks"
            for path in (folder, home, scripts):
                path.mkdir()
            (home / "airflow.db").write_bytes(_MIGRATED_DB)
            for block in BLOCKS:
                if block.document == document and block.kind == "file":
                    target = folder / block.argument
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(block.code, encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "PYTEST_"))}
            env["AIRFLOW_HOME"] = str(home)
            env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
            made[document] = Workspace(folder, env, scripts)
        return made[document]

    return workspace


def check_syntax(block: Block) -> None:
    if block.language == "python":
        compile(block.code, block.name, "exec")
    elif block.language == "bash":
        result = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{block.name}: bash -n: {result.stderr}"
    elif block.language == "json":
        json.loads(block.code)
    elif block.kind != "fragment":
        pytest.fail(
            f"{block.name}: no check for {block.language!r} blocks: add one here, or mark it fragment"
        )


def _script(block: Block, workspace: Workspace) -> list[str]:
    """The command that runs the block as a reader would; the block is saved where tracebacks find it."""
    suffix = {"python": ".py", "bash": ".sh"}.get(block.language)
    if suffix is None:
        pytest.fail(f"{block.name}: cannot run {block.language!r} blocks: mark it (see this module's docs)")
    script = workspace.scripts / f"{block.document.stem}-line-{block.line}{suffix}"
    script.write_text(block.code, encoding="utf-8")
    return [sys.executable, str(script)] if block.language == "python" else ["bash", "-e", str(script)]


def _report(block: Block, message: str, output: str) -> str:
    return f"{block.name}: {message}\n--- block ---\n{block.code}--- output (end) ---\n{output[-6000:]}"


def run_block(block: Block, workspace: Workspace) -> None:
    result = subprocess.run(
        _script(block, workspace),
        cwd=workspace.folder,
        env=workspace.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, _report(block, f"exited with {result.returncode}", output)


def serve_block(block: Block, workspace: Workspace) -> None:
    """Start the server the block runs, wait for its first line, stop it as Ctrl-C would."""
    process = subprocess.Popen(
        _script(block, workspace),
        cwd=workspace.folder,
        env=workspace.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, which gets the SIGINT as from a terminal
    )
    assert process.stdout is not None
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(SERVE_START_TIMEOUT_S)
    try:
        if not (first and first[0].strip()):
            pytest.fail(_report(block, "printed nothing before exiting or timing out", _drain(process)))
        os.killpg(process.pid, signal.SIGINT)
        returncode = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert returncode == 0, _report(block, f"exited with {returncode} on SIGINT", first[0] + _drain(process))


def _drain(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    out, err = process.communicate(timeout=10)
    return out + err


def _first_of_each_command(blocks: list[Block]) -> dict[Block, Block]:
    """Blocks that repeat an earlier one's command (the README and a doc_md show the same), to it."""
    first: dict[tuple[str, str, str], Block] = {}
    repeats = {}
    for block in blocks:
        key = (block.kind, block.language, block.code)
        if block.kind in ("run", "serve") and key in first:
            repeats[block] = first[key]
        first.setdefault(key, block)
    return repeats


REPEATS = _first_of_each_command(BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.name}-{b.language}-{b.kind}" for b in BLOCKS])
def test_block(block: Block, workspaces) -> None:
    if block in REPEATS:
        return  # the same command runs as the block REPEATS[block]: a second run proves nothing more
    if block.kind in ("syntax", "fragment", "file"):
        check_syntax(block)
    elif block.language == "json":  # output shown to the reader: it has to be JSON
        json.loads(block.code)
    elif block.kind == "serve":
        serve_block(block, workspaces(block.document))
    else:
        run_block(block, workspaces(block.document))


def test_a_new_users_test_from_the_readme_is_run():
    """The walk-through stays what test_block runs: a DAG file, its test, and a run block running it."""
    readme = [block for block in BLOCKS if block.document.name == "README.md"]
    files = {block.argument: block for block in readme if block.kind == "file"}
    assert {"dags/my_dag.py", "tests/test_my_dag.py"} <= set(files)
    assert "run_dag(load_dag(" in files["tests/test_my_dag.py"].code
    runs = [block.code for block in readme if block.kind == "run" and block.language == "bash"]
    assert any("airflow db migrate" in code and "pytest tests/test_my_dag.py" in code for code in runs)


def test_markers_are_read():
    """Each marker applies to the fence right after it; indented fences (in doc_md lists) are dedented."""
    markdown = textwrap.dedent(
        """\
        <!-- readme-check: file dags/a.py -->
        ```python
        x = 1
        ```

        ```bash
        echo hi
        ```

        <!-- readme-check: syntax: needs a HubSpot account -->
          ```bash
          curl https://api.hubapi.com
          ```
        """
    )
    blocks = parse_markdown(markdown, REPO / "README.md")
    assert [(b.line, b.language, b.kind, b.argument, b.code) for b in blocks] == [
        (2, "python", "file", "dags/a.py", "x = 1\n"),
        (6, "bash", "run", "", "echo hi\n"),
        (11, "bash", "syntax", "needs a HubSpot account", "curl https://api.hubapi.com\n"),
    ]


@pytest.mark.parametrize(
    "markdown",
    [
        "<!-- readme-check: file -->\n```python\n```\n",  # no path
        "<!-- readme-check: skip -->\n```python\n```\n",  # unknown kind
        "<!-- readme-check: syntax -->\n\n```python\n```\n",  # not on the line before the fence
        "```\nplain\n```\n",  # no language, no marker
        "```bash\necho\n",  # never closed
    ],
)
def test_a_misplaced_or_unknown_marker_fails_collection(markdown):
    with pytest.raises(ValueError):
        parse_markdown(markdown, REPO / "README.md")
