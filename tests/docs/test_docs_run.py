"""The README's and every doc's commands and snippets, run against a live Trackway, so the
docs cannot drift from what Trackway does (the convention: docs/README.md).

Per doc file: one `trackway serve` (tests/support.py) whose data directory is
`./trackway-data` of a fresh working directory, the CLI's default, so bare `trackway`
commands work on it; `.venv/bin` first on PATH; the placeholders the docs use replaced
by this server's write key, URL and admin token. Every process started here (the server,
the commands, the snippets) loads guard/sitecustomize.py: nothing reaches beyond the
loopback. A failure names the doc, the line, the command and what it printed.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, SHELL, Block, Command, name, output_matches, read
from tests.support import Server, start_server

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 60


def substitute(text: str, server: Server) -> str:
    """The docs' placeholders replaced by the test server's values."""
    return (
        text.replace("3kX9...", server.write_key)
        .replace("http://127.0.0.1:8088", server.url)
        .replace("tw_...", server.admin_token)
    )


def substitute_command(command: Command, server: Server) -> Command:
    expected = command.expected and substitute(command.expected, server)
    return Command(command.line, substitute(command.text, server), expected)


_MARK = "@@docs-test@@ "
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _split(printed: str) -> list[tuple[str, str]]:
    """(command number or "end", what it printed) from the marked output of a block."""
    pieces = re.split(rf"(?:^|\n){re.escape(_MARK)}(\S+)\n", printed)
    return [(pieces[i], pieces[i + 1]) for i in range(1, len(pieces) - 1, 2)]


def _placeholder(variable: str) -> str:
    """The value of an unset `${NAME}`: a URL nothing listens on for *_URL, else text."""
    if variable.endswith("_URL"):
        return f"http://127.0.0.1:1/{variable.lower()}"
    return f"docs-test-{variable.lower()}"


def indented(text: str) -> str:
    return "".join(f"    | {line}\n" for line in text.rstrip("\n").splitlines()) or "    |\n"


class DocRunner:
    """Runs the blocks of one doc in its working directory, collecting failures."""

    def __init__(self, workdir: Path, server: Server, env: dict[str, str]) -> None:
        self.workdir, self.server, self.env = workdir, server, env
        self.failures: list[str] = []
        self._python: subprocess.Popen[str] | None = None
        self._python_log = workdir / ".docs-test-python.log"

    def run(self, block: Block) -> None:
        text = substitute(block.text, self.server)
        if block.file is not None:
            path = self.workdir / block.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif block.lang in SHELL or block.lang == "console":
            self.shell(block, [substitute_command(c, self.server) for c in block.commands])
        elif block.lang == "yaml":
            path = self.workdir / f".docs-test-{block.line}.yaml"
            path.write_text(text)
            # The secrets a workspace file names as ${NAME}, set as its reader would.
            secrets = {name: _placeholder(name) for name in _VARIABLE.findall(text)}
            apply = Command(block.line, f"trackway apply {path.name}")
            self.shell(block, [apply], {**secrets, **self.env})
        elif block.lang == "python":
            self.python(block, text)

    def shell(
        self, block: Block, commands: list[Command], env: dict[str, str] | None = None
    ) -> None:
        """The block's commands in one bash (an `export` or `cd` holds for the rest of
        the block), stopping at the first that fails; a marker line before each tells
        which command printed what."""
        script = ["set -e"]
        for n, command in enumerate(commands):
            script += [f"printf '\\n{_MARK}{n}\\n'", command.text]
        script.append(f"printf '\\n{_MARK}end\\n'")
        try:
            done = subprocess.run(
                ["bash", "-c", "\n".join(script)],
                cwd=self.workdir,
                env=env or self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT_S,
            )
            printed, status = done.stdout, done.returncode
        except subprocess.TimeoutExpired as exc:
            printed = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            status = None
        outputs = dict(_split(printed))
        for n, command in enumerate(commands):
            where = f"{name(block.doc)}:{command.line}: $ {command.text}"
            output = outputs.get(str(n), "")
            if str(n + 1) not in outputs and "end" not in outputs:  # it did not get past n
                why = (
                    f"did not finish in {TIMEOUT_S} s"
                    if status is None
                    else f"exit status {status}"
                )
                self.failures.append(f"{where}\n  {why}:\n{indented(output)}")
                return
            expected = command.expected
            if expected is not None and not output_matches(expected, output):
                self.failures.append(
                    f"{where}\n  the doc shows:\n{indented(expected)}"
                    f"  it printed:\n{indented(output)}"
                )

    def python(self, block: Block, code: str) -> None:
        if self._python is None:
            self._python_stderr = self._python_log.open("w")
            self._python = subprocess.Popen(
                [sys.executable, str(HERE / "driver.py")],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._python_stderr,
                text=True,
            )
        assert self._python.stdin is not None and self._python.stdout is not None
        # The absolute path: the traceback then shows the doc's lines.
        request = {"doc": str(block.doc), "line": block.line, "code": code}
        self._python.stdin.write(json.dumps(request))
        self._python.stdin.write("\n")
        self._python.stdin.flush()
        answer = self._python.stdout.readline()
        if not answer:
            self.close()
            self.failures.append(f"{block.where}: ```python\n  the interpreter died.")
            return
        result = json.loads(answer)
        if not result["ok"]:
            self.failures.append(
                f"{block.where}: ```python\n{indented(code)}  raised:\n{indented(result['error'])}"
            )

    def close(self) -> None:
        """End the python interpreter (its exit handlers run, e.g. an analytics flush)."""
        if self._python is None:
            return
        python, self._python = self._python, None
        assert python.stdin is not None and python.stdout is not None
        python.stdin.close()
        try:
            code = python.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            python.kill()
            code = python.wait()
        python.stdout.close()
        self._python_stderr.close()
        if code != 0:
            self.failures.append(
                f"python blocks: the interpreter exited with {code}:\n"
                f"{indented(self._python_log.read_text())}"
            )


def environment(server: Server | None = None) -> dict[str, str]:
    """The environment of the server and of every command and snippet."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(HERE / "guard"),
    }
    if server is not None:
        env.update(
            TRACKWAY_WRITE_KEY=server.write_key,
            TRACKWAY_DATA_PLANE=server.url,
            TRACKWAY_ADMIN_TOKEN=server.admin_token,
        )
    return env


@pytest.mark.parametrize("doc", DOCS, ids=[name(d) for d in DOCS])
def test_doc_blocks_run(doc: Path, tmp_path: Path) -> None:
    """Every block of the doc follows the convention, and every one that runs succeeds
    (exit status 0, the output the doc shows, no exception)."""
    blocks = [block for block in read(doc) if block.runs]
    if not blocks:
        return  # nothing to run: the doc only shows (read() checked its blocks)
    server = start_server(tmp_path / "trackway-data", env={"PYTHONPATH": str(HERE / "guard")})
    runner = DocRunner(tmp_path, server, environment(server))
    try:
        for block in blocks:
            runner.run(block)
    finally:
        runner.close()
        server.stop()
    assert not runner.failures, (
        f"{len(runner.failures)} block(s) of {name(doc)} failed "
        "(the convention: docs/README.md):\n\n" + "\n".join(runner.failures)
    )
