"""What a fresh clone runs first: `make run`, `make test` (scripts/install-test-deps) and
the `./trackway` wrapper."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from trackway import __version__

REPO = Path(__file__).parent.parent
INSTALL = REPO / "scripts" / "install-test-deps"

FAKE_APT = """#!/bin/sh
echo "apt-get $*" >> "$CALLS"
if [ "$1" = install ]; then  # "installs" the packages: their commands appear
  for name in chromium node npm; do
    printf '#!/bin/sh\\n' > "$BIN/$name"; /bin/chmod +x "$BIN/$name"
  done
fi
"""


def _tools(tmp_path: Path, uid: int, *present: str) -> Path:
    """A PATH holding only bash, a fake `id` saying `uid`, a fake apt-get that records its
    calls, and the named commands."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bash = shutil.which("bash")
    assert bash is not None
    (bin_dir / "bash").symlink_to(bash)
    scripts = {"id": f"#!/bin/sh\necho {uid}\n", "apt-get": FAKE_APT}
    scripts.update({name: "#!/bin/sh\n" for name in present})
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _install(bin_dir: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = bin_dir.parent / "calls"
    env = {"PATH": str(bin_dir), "BIN": str(bin_dir), "CALLS": str(calls)}
    done = subprocess.run([str(INSTALL)], capture_output=True, text=True, env=env, timeout=30)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_nothing_is_installed_when_everything_is_there(tmp_path: Path) -> None:
    done, calls = _install(_tools(tmp_path, 0, "chromium", "node", "npm"))
    assert (done.returncode, done.stderr, calls) == (0, "", [])


def test_as_root_the_missing_packages_are_installed_with_one_update(tmp_path: Path) -> None:
    bin_dir = _tools(tmp_path, 0, "node")
    done, calls = _install(bin_dir)
    assert done.returncode == 0, done.stderr
    assert calls == ["apt-get update -qq", "apt-get install -y -qq chromium npm"]
    again, calls_again = _install(bin_dir)
    assert again.returncode == 0 and calls_again == calls  # installed: nothing more


def test_without_root_it_stops_with_the_command_to_run(tmp_path: Path) -> None:
    done, calls = _install(_tools(tmp_path, 1000))
    assert done.returncode == 1
    assert done.stderr == (
        "make test needs chromium nodejs npm: run 'sudo apt-get update &&"
        " sudo apt-get install -y chromium nodejs npm', then make test again\n"
    )
    assert calls == []


def _make(*args: str) -> list[str]:
    """The commands `make` would run on a fresh clone (a dry run)."""
    fresh = ["VENV=/nonexistent/venv", "NODE_STAMP=/nonexistent/node_modules/.installed"]
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), *fresh, *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=30,
    )
    return done.stdout.splitlines()


def test_make_run_installs_only_what_running_needs_and_passes_args() -> None:
    commands = _make("run", "ARGS=--host 0.0.0.0 --port 9000")
    installs = [c for c in commands if " install " in c and "--upgrade pip" not in c]
    assert installs == ["/nonexistent/venv/bin/pip install --quiet -e ."]
    assert commands[-1] == "/nonexistent/venv/bin/trackway serve --host 0.0.0.0 --port 9000"


def test_make_test_installs_the_system_packages_before_the_node_sdks() -> None:
    commands = _make("test")
    assert "/nonexistent/venv/bin/pip install --quiet -e '.[dev]' -e ./clients/python" in commands
    deps = commands.index("scripts/install-test-deps")
    npm = next(i for i, c in enumerate(commands) if "npm ci" in c)
    assert deps < npm


@pytest.mark.parametrize("cwd", [REPO, Path("/")])
def test_the_wrapper_runs_trackway_from_any_directory(cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # not activated: no .venv/bin on the PATH
    done = subprocess.run(
        [str(REPO / "trackway"), "--version"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=30,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"trackway, version {__version__}\n"
