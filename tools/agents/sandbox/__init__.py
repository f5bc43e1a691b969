"""Running strategy code without Docker: what is enforced, and where.

The server never runs a strategy in its own process. `Sandbox.run` starts `launcher.py` in a new
session with an EMPTY environment (nothing of the server's environment, API keys included, is
inherited; `/proc/<launcher>/environ` is empty). Enforced:

- no network (launcher): `unshare(CLONE_NEWNET)`; the namespace has only a loopback device that is
  down, so every connect fails (ENETUNREACH), to the internet and to the server's port alike.
- no view of the server's processes (launcher): `unshare(CLONE_NEWPID)`, and PID 1 of the new
  namespace mounts a fresh `/proc`: `/proc/<server pid>/environ` does not exist in there.
- no secrets or holdout on disk (launcher): a private mount namespace with empty tmpfs mounted over
  the data directory (keys, artifacts, the full dataset), /root, /home, /tmp, /var/tmp and /dev/shm;
  the interpreter's folders are bound back read-only; the working directory appears at /tmp/ws.
- only the development data (server): the working directory holds `data.npz` with the rows the run
  may see (development rows during iterations) and nothing else.
- unprivileged user (launcher, root mode): `setgroups([])`, setgid/setuid to nobody (65534),
  `PR_SET_NO_NEW_PRIVS`; the server's 0600 files stay unreadable.
- CPU time (child, RLIMIT_CPU): SIGXCPU, then SIGKILL.
- memory (child, RLIMIT_AS): allocations fail with MemoryError.
- file size (child, RLIMIT_FSIZE): SIGXFSZ / EFBIG; this also caps the captured output.
- open files (child, RLIMIT_NOFILE): EMFILE.
- processes (child, RLIMIT_NPROC, per uid, so effective once the uid is dropped): fork fails (EAGAIN).
- wall time (server): `killpg(SIGKILL)` of the launcher's session at the deadline, and always after
  exit; PID 1 of the namespace dying takes every process left in it, including ones that left the
  session.

Modes, chosen by a probe at first use: `root` (everything above), `user` (not root: the namespaces
through an unprivileged user namespace; no uid drop, so RLIMIT_NPROC counts the user's other
processes too), `rlimits` (no namespaces here: clean environment, rlimits, private working directory
and wall timeout only; the probe's report says so and `get_sandbox_status` shows it).

A Python-level guard (CausalView copies) is no security boundary: a strategy can reach its own input
arrays through introspection. That is why the input holds only the rows a run may see, and why the
one holdout run is audited for causality (its development-row embeddings must equal the development
run's embeddings of the same code).
"""
