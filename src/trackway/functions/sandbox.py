"""The sandbox a function worker enters before it runs any function (Linux namespaces).

In order: a server running as root first becomes `nobody`; then new user, mount,
network and PID namespaces. The process that made them stays outside, only to wait and
pass on how the worker ended; its child, the PID namespace's first process, hides the
data directory and the directories that hold sockets behind empty read-only tmpfs
mounts, makes every mount read-only, mounts a /proc of its own namespace, then forks
the worker and reaps orphans until the worker ends. The worker enters a second user
namespace, in which it is `nobody` with no capability over those mounts, and caps its
processes with RLIMIT_NPROC. What this does and does not isolate: docs/decisions (function
sandbox) and docs/insert-functions.md.
"""

import contextlib
import ctypes
import os
import resource
import signal
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

SETTING = "TRACKWAY_FUNCTION_SANDBOX"
"""`off` runs functions without the sandbox (where user namespaces are not available)."""
NOBODY = 65534
PROCESS_LIMIT = 32
"""Processes a worker may have at once, itself included (RLIMIT_NPROC in its namespace)."""
SOCKET_DIRS = ("/tmp", "/run", "/var/run", "/var/tmp", "/dev/shm")
"""Hidden: where Unix sockets live (PostgreSQL's, for one); a network namespace does not
cover sockets that are files."""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442  # on every architecture
_OPEN_TREE_FLAGS = 1 | 0o2000000 | 0x8000  # OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 1, 2, 4
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxUnavailable(Exception):
    """The kernel refused a step of the sandbox (user namespaces disabled, most often)."""


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def enabled() -> bool:
    """Whether functions run in the sandbox (the server's setting)."""
    return os.environ.get(SETTING, "on").strip().lower() != "off"


def enter(hidden: Sequence[Path]) -> None:
    """Enter the sandbox, hiding the directories `hidden` too; returns in the sandboxed
    process. Raises SandboxUnavailable, naming the step the kernel refused."""
    root = os.getuid() == 0
    if root:
        _unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID, "mount, network and PID")
    else:
        uid, gid = os.getuid(), os.getgid()
        _unshare(
            _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID,
            "user, mount, network and PID",
        )
        _map_ids(0, uid, 0, gid)
    _fork_and_wait(init=False)
    # The first process of the new PID namespace: it dies with the waiter outside.
    if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        os._exit(1)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    python = _detach_python_unreachable_by_nobody() if root else []
    for path in [*SOCKET_DIRS, *map(str, hidden)]:
        if os.path.isdir(path) and not os.path.islink(path):
            _mount("tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=4k")
    _reattach(python)
    _read_only_everywhere()
    # This namespace's processes only; writable, for the worker's id maps.
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    _fork_and_wait(init=True)
    # The worker: nobody, in a user namespace of its own, which owns none of the mounts
    # above (it cannot unmount what hides the data directory) and counts its processes.
    if root:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        except OSError as exc:
            raise SandboxUnavailable(f"becoming nobody failed: {exc}; {_ADVICE}") from exc
        # Changing uid made the process undumpable, which gives /proc/self to root.
        _libc.prctl(_PR_SET_DUMPABLE, 1)
    uid, gid = os.getuid(), os.getgid()
    _unshare(_CLONE_NEWUSER, "a user")
    _map_ids(NOBODY, uid, NOBODY, gid)
    resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))


def _detach_python_unreachable_by_nobody() -> list[tuple[int, str, str]]:
    """Python's own directories that nobody cannot reach (an interpreter under /root):
    (a detached copy of the directory's mount, the directory, the ancestor in the way),
    to be put back under an empty tmpfs over that ancestor (`_reattach`)."""
    detached = []
    for directory in sorted({sys.base_prefix, sys.prefix, *filter(os.path.isdir, sys.path)}):
        blocker = _first_closed_ancestor(os.path.realpath(directory))
        if blocker is not None:
            fd = _libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, directory.encode(), _OPEN_TREE_FLAGS)
            if fd < 0:
                _refused(f"open_tree {directory}")
            detached.append((fd, os.path.realpath(directory), blocker))
    return detached


def _first_closed_ancestor(path: str) -> str | None:
    current = "/"
    for part in Path(path).parts[1:]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


def _reattach(detached: list[tuple[int, str, str]]) -> None:
    covered: set[str] = set()
    for fd, directory, blocker in detached:
        if blocker not in covered:
            _mount("tmpfs", blocker, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,mode=755")
            covered.add(blocker)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if _libc.syscall(_SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, directory.encode(), 4) != 0:
            _refused(f"move_mount {directory}")
        os.close(fd)


def _fork_and_wait(init: bool) -> None:
    """Continue in a child; the parent waits for it and ends as it ended (so the pool
    sees the worker's status: a signal N as exit status 128 + N from the namespace's
    first process, which no signal of its own can end).

    With `init`, the parent is the PID namespace's first process: it reaps every
    orphan (a function's forked children), and when it ends the kernel kills every
    process left in the namespace."""
    child = os.fork()
    if child == 0:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if init:
        _libc.prctl(_PR_SET_DUMPABLE, 0)  # the worker must not ptrace it
        while (ended := os.wait())[0] != child:
            pass
        status = ended[1]
        os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    if code > 128:
        with contextlib.suppress(OSError):  # SIGKILL's cannot be set, nor needs to be
            signal.signal(code - 128, signal.SIG_DFL)
        os.kill(os.getpid(), code - 128)
    os._exit(code)


def _unshare(flags: int, what: str) -> None:
    if _libc.unshare(flags) != 0:
        _refused(f"unshare ({what} namespaces)")


def _map_ids(inside_uid: int, outside_uid: int, inside_gid: int, outside_gid: int) -> None:
    try:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{inside_uid} {outside_uid} 1")
        Path("/proc/self/gid_map").write_text(f"{inside_gid} {outside_gid} 1")
    except OSError as exc:
        raise SandboxUnavailable(
            f"mapping the user namespace's ids failed: {exc}; {_ADVICE}"
        ) from exc


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    def arg(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if _libc.mount(arg(source), arg(target), arg(fstype), flags, arg(data)) != 0:
        _refused(f"mount {fstype or 'propagation'} on {target}")


def _read_only_everywhere() -> None:
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV, 0, 0, 0)
    size = ctypes.c_size_t(ctypes.sizeof(attr))
    if (
        _libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(attr), size)
        != 0
    ):
        _refused("mount_setattr (read-only)")


def _refused(step: str) -> None:
    errno = ctypes.get_errno()
    raise SandboxUnavailable(f"{step} failed: {os.strerror(errno)}; {_ADVICE}")


_ADVICE = (
    "insert functions run in Linux user, mount, network and PID namespaces: enable user"
    f" namespaces, or set {SETTING}=off to run them without the sandbox"
    " (docs/insert-functions.md)"
)
