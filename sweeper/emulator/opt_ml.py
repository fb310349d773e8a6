"""Run a command where ``/opt/ml`` is one job's tree: how the emulator runs a job that
names its own ``ContainerEntrypoint``.

Such a job's code is written for the container's absolute paths (the SageMaker SDK v3's
drivers read ``/opt/ml/input/config/...`` and write ``/opt/ml/output/failure``), so it
cannot be pointed elsewhere with ``SM_*`` variables as a script-mode job is. Instead
the command runs in a private mount namespace (Linux) in which the job's tree is
bind-mounted at ``/opt/ml``; the rest of the file system is the host's, ``/opt``'s other
entries included. Without root, a user namespace maps the caller to root inside it, as a
container's user is. Nothing is mounted outside that namespace, and it ends with the
job's processes.

Run as a script, standard library only, before anything else starts threads::

    python -I opt_ml.py <job tree's opt/ml> <staging dir> -- <command> [args...]

It execs the command (same process, so the runner's process group, signals and reaper
apply). If the namespace cannot be made, it says why in the job's failure file and on
stderr, and exits 71 (EX_OSERR).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
EX_OSERR = 71

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    """Raise the errno of a failed mount of ``what``."""
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {what}: {os.strerror(code)}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = _libc.mount(
        _bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data or None)
    )
    _check(result, f"mount {target}")


def _unshare() -> None:
    """A new mount namespace; in a new user namespace (caller mapped to root) unless the
    caller may make one on its own (root with CAP_SYS_ADMIN)."""
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "mount namespaces are Linux's")
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and _libc.unshare(CLONE_NEWNS) == 0:
        return
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare (user and mount namespaces): {os.strerror(code)}")
    for path, text in (
        ("/proc/self/setgroups", "deny"),
        ("/proc/self/uid_map", f"0 {uid} 1"),
        ("/proc/self/gid_map", f"0 {gid} 1"),
    ):
        with open(path, "w") as f:
            f.write(text)


def _cover_opt(staging: str) -> None:
    """Put a writable ``/opt`` over the host's (a tmpfs) holding every host entry, bound
    back from ``staging``, so that ``/opt/ml`` can be made."""
    _mount("/opt", staging, None, MS_BIND | MS_REC)
    _mount("tmpfs", "/opt", "tmpfs", 0, "mode=0755")
    for entry in os.scandir(staging):
        target = os.path.join("/opt", entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
            continue
        if entry.is_dir():
            os.mkdir(target)
        else:
            open(target, "w").close()
        _mount(entry.path, target, None, MS_BIND | MS_REC)
    os.mkdir("/opt/ml")


def enter(ml: str, staging: str) -> None:
    """Make ``ml`` this process's ``/opt/ml`` (see the module's doc)."""
    _unshare()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing of ours reaches the host
    if not os.path.isdir("/opt/ml"):
        _cover_opt(staging)
    _mount(ml, "/opt/ml", None, MS_BIND | MS_REC)
    here = os.getcwd()
    if here == ml or here.startswith(ml + os.sep):  # the same directory, by its new name
        os.chdir("/opt/ml" + here[len(ml) :])


def main(argv: list[str]) -> int:
    ml, staging, dashes, *command = argv
    if dashes != "--" or not command:
        print("usage: opt_ml.py <opt/ml> <staging> -- <command> [args...]", file=sys.stderr)
        return 2
    try:
        enter(ml, staging)
    except OSError as exc:
        reason = (
            "the emulator runs a job with a ContainerEntrypoint in a private mount namespace "
            f"with its tree at /opt/ml, which this machine does not allow ({exc.strerror}); "
            "script-mode jobs (sagemaker_program) run anywhere"
        )
        print(f"emulator: {reason}", file=sys.stderr)
        with contextlib.suppress(OSError), open(os.path.join(ml, "output", "failure"), "w") as f:
            f.write(reason)
        return EX_OSERR
    try:
        os.execvp(command[0], command)  # the environment is the one this process was given
    except OSError as exc:
        print(f"emulator: cannot run the ContainerEntrypoint {command[0]}: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
