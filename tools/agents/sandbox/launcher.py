"""The sandbox launcher: started by the server with an empty environment, it fences itself in, then runs child.py.

Usage: `python -I -B launcher.py '<json config>'`. As root it (1) unshares mount, network, PID, IPC and
UTS namespaces, (2) makes every mount private, (3) mounts empty tmpfs over the hidden paths (the data
directory, /root, /home, /tmp, /var/tmp, /dev/shm), (4) binds back read-only the interpreter folders
that lived under them and binds the working directory at /tmp/ws, (5) forks PID 1 of the new PID
namespace, which mounts a fresh /proc (the server's processes are not in it) and forks the strategy
process; that one sets the rlimits, drops to the unprivileged uid/gid with no supplementary groups
and no_new_privs, and execs `python -I -B child.py` with a fixed minimal environment. The launcher
waits and exits with the child's status. Not root: the same through a user namespace when the
kernel allows it, else rlimits only. `--probe` reports which steps work, as JSON on stdout.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
SANDBOX_WS = "/tmp/ws"

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                      data and data.encode()), f"mount {target}")


def _unshare(flags: int, what: str) -> None:
    _check(libc.unshare(flags), f"unshare {what}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _fence_files(config: dict[str, Any], report: dict[str, Any]) -> None:
    """Private mounts; tmpfs over hidden paths; interpreter folders and the workspace bound back."""
    keep_fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in config["keep"]}
    ws_fd = os.open(config["workspace"], os.O_PATH | os.O_DIRECTORY)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    hidden: list[str] = []
    for path in sorted(config["hide"], key=len):
        if any(_under(path, done) for done in hidden) or not os.path.isdir(path):
            continue
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64m")
        hidden.append(path)
    for path, fd in keep_fds.items():
        if any(_under(path, done) for done in hidden):
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    os.makedirs(SANDBOX_WS, exist_ok=True)
    _mount(f"/proc/self/fd/{ws_fd}", SANDBOX_WS, None, MS_BIND)
    os.close(ws_fd)
    report["hidden_paths"] = hidden
    report["mount_namespace"] = True


def _limits(config: dict[str, Any]) -> None:
    limits = config["limits"]
    for name, value in (("RLIMIT_CPU", limits["cpu_seconds"]), ("RLIMIT_AS", limits["memory_bytes"]),
                        ("RLIMIT_FSIZE", limits["file_bytes"]), ("RLIMIT_NOFILE", limits["open_files"]),
                        ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_CORE", 0)):
        # CPU: SIGXCPU at the soft limit names the cause; SIGKILL one second later if it is ignored
        hard = value + 1 if name == "RLIMIT_CPU" else value
        resource.setrlimit(getattr(resource, name), (value, hard))


def _drop(config: dict[str, Any]) -> None:
    uid, gid = config["uid"], config["gid"]
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _exec(config: dict[str, Any]) -> int:
    env = {"PATH": "/usr/bin:/bin", "HOME": SANDBOX_WS if config["fenced"] else config["workspace"],
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
           "LANG": "C.UTF-8"}
    os.chdir(SANDBOX_WS if config["fenced"] else config["workspace"])
    os.execve(config["python"], [config["python"], "-I", "-B", "child.py"], env)


def _run_root(config: dict[str, Any], report: dict[str, Any]) -> int:
    _unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS, "namespaces")
    report["network_namespace"] = report["pid_namespace"] = True
    _fence_files(config, report)
    config["fenced"] = True
    return _spawn_init(config, drop=True)


def _run_user(config: dict[str, Any], report: dict[str, Any]) -> int:
    uid, gid = os.getuid(), os.getgid()
    _unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS,
             "user namespace")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    report["network_namespace"] = report["pid_namespace"] = report["user_namespace"] = True
    _fence_files(config, report)
    config["fenced"] = True
    return _spawn_init(config, drop=False)


def _spawn_init(config: dict[str, Any], *, drop: bool) -> int:
    """Fork PID 1 of the new namespace; it mounts /proc and forks the strategy process, then waits for it.

    The strategy must not be PID 1 itself: the kernel does not deliver default-action signals to a
    namespace's init (SIGXCPU would be dropped), and PID 1 exiting takes every other process with it.
    """
    pid = os.fork()
    if pid == 0:
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            worker = os.fork()
            if worker == 0:
                _limits(config)
                if drop:
                    _drop(config)
                else:
                    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
                if config.get("probe"):
                    os._exit(0)
                _exec(config)
            os._exit(_wait(worker))
        except BaseException as exc:  # noqa: BLE001 - a forked child must never return into the launcher
            sys.stderr.write(f"sandbox setup failed: {exc}\n")
            os._exit(125)
    return _wait(pid)


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def main() -> int:
    config = json.loads(sys.argv[-1])
    probe = "--probe" in sys.argv
    config["probe"], config["fenced"] = probe, False
    mode = config["mode"]
    report = {"mode": mode, "root": os.geteuid() == 0, "network_namespace": False, "pid_namespace": False,
              "mount_namespace": False, "user_namespace": False, "uid_drop": mode == "root", "rlimits": True}
    try:
        if mode == "root":
            code = _run_root(config, report)
        elif mode == "user":
            code = _run_user(config, report)
        else:
            _limits(config)
            code = 0 if probe else _exec(config)
    except OSError as exc:
        report["error"] = str(exc)
        code = 124
    if probe:
        report["ok"] = code == 0
        sys.stdout.write(json.dumps(report))
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
