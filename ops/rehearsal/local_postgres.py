"""The throwaway local servers ``rehearse`` and ``sandbox`` run: PostgreSQL over TLS, and
any other process they start, all stopped and their scratch directory removed however the
run ends.

PostgreSQL is Debian's server package (``install.sh``), which has TLS: a cluster in a
fresh ``/tmp/swipesavvy-<purpose>-*`` directory, a self-signed certificate for
``localhost`` made with ``openssl`` (the CA file clients verify against, as the backend
does RDS's bundle), SCRAM passwords, connections over TLS only, as RDS with
``rds.force_ssl``. The server runs as a child process (not daemonized by ``pg_ctl``).

Cleanup, in three layers: ``Scratch.close`` on a normal end and on exceptions (Ctrl-C and
SIGTERM become ``KeyboardInterrupt`` in the commands); a guardian process
(``ops/rehearsal/guardian.py``) that does the same when the run is killed outright (SIGKILL); and
``reap_leftovers``, which removes what a run killed before it could start its guardian
left behind, naming it.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from ops.rehearsal.guardian import alive

OWNER_FILE = "owner.pid"  # the run's pid: a directory whose run is gone is a leftover
SERVER_USER = "postgres"  # PostgreSQL refuses to run as root: Debian's package user
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
DEBIAN_POSTGRES_ROOT = "/usr/lib/postgresql"  # one directory per installed major
POSTGRES_ROOT_ENV = "SWIPESAVVY_POSTGRES_ROOT"
HOST = "localhost"  # the certificate's name: clients verify it (sslmode verify-full)


class ServerUnavailable(Exception):
    """One line: why the local PostgreSQL could not start, and the fix."""


def reap_leftovers(purpose: str) -> list[str]:
    """Remove the scratch directories of earlier ``purpose`` runs that are gone (killed before
    their own cleanup could run); their paths, to be named."""
    removed = []
    for path in sorted(glob.glob(os.path.join(tempfile.gettempdir(), f"swipesavvy-{purpose}-*"))):
        try:
            owner = int(Path(path, OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not one of ours, or still being created
        if not alive(owner):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"{path} (run {owner})")
    return removed


def _drop_to_server_user():
    """preexec_fn: run as the server's user when started as root."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam(SERVER_USER)

    def drop() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop


class Scratch:
    """A scratch directory and the processes started for one run, with their guardian."""

    def __init__(self, purpose: str):
        self.removed_leftovers = reap_leftovers(purpose)
        self.path = Path(tempfile.mkdtemp(prefix=f"swipesavvy-{purpose}-"))  # 0700
        self.write_private(OWNER_FILE, str(os.getpid()))
        self.processes: list[tuple[subprocess.Popen, signal.Signals]] = []
        self._guardian = subprocess.Popen(
            [sys.executable, "-m", "ops.rehearsal.guardian"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C and a signal to our process group do not reach it
            cwd=Path(__file__).resolve().parents[2],  # the project, so -m ops.rehearsal.guardian imports
            text=True,
        )
        self._tell(f"dir {self.path}")

    def write_private(self, name: str, text: str) -> Path:
        """A new file in the directory that only its owner can read, from its first byte."""
        path = self.path / name
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(text)
        return path

    def _tell(self, line: str) -> None:
        self._guardian.stdin.write(line + "\n")
        self._guardian.stdin.flush()

    def start(
        self, command: list[str], log_name: str, stop_signal: signal.Signals = signal.SIGTERM, **kwargs
    ) -> subprocess.Popen:
        """A child process whose output goes to ``log_name`` in the scratch directory, stopped
        with ``stop_signal``."""
        with os.fdopen(os.open(self.path / log_name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **kwargs)
        self.processes.append((process, stop_signal))
        self._tell(f"pid {process.pid} {stop_signal.name}")
        return process

    def log_tail(self, log_name: str, lines: int = 1) -> str:
        try:
            text = (self.path / log_name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " ".join(text[-lines:])

    def close(self) -> None:
        """Stop every process (newest first: the backend before the database) and remove the directory."""
        for process, stop_signal in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(stop_signal)
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(self.path, ignore_errors=True)
        self._guardian.stdin.close()  # nothing left for it: it exits
        self._guardian.wait()


def announced_scratch(purpose: str) -> Scratch:
    """A new Scratch, saying on stderr what it removed of earlier runs."""
    scratch = Scratch(purpose)
    for leftover in scratch.removed_leftovers:
        print(f"removed what an earlier {purpose} run left behind: {leftover}", file=sys.stderr, flush=True)
    return scratch


@dataclass(frozen=True)
class LocalPostgres:
    host: str
    port: int
    password: str  # the superuser's, for this run only
    ca_file: Path  # the server's self-signed certificate: what clients verify against

    def dsn(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=user,
            password=self.password if password is None else password,
            sslmode="verify-full",
            sslrootcert=str(self.ca_file),
        )


def server_binaries() -> Path:
    """The bin directory of the newest PostgreSQL major installed, compared as numbers (Debian 12
    has 15, Debian 13 has 17), under ``SWIPESAVVY_POSTGRES_ROOT`` as install.sh looks there."""
    root = Path(os.environ.get(POSTGRES_ROOT_ENV) or DEBIAN_POSTGRES_ROOT)
    majors = {
        int(p.parent.parent.name): p.parent for p in root.glob("*/bin/postgres") if p.parent.parent.name.isdigit()
    }
    if not majors:
        raise ServerUnavailable(f"no PostgreSQL server under {root} (fix: ./install.sh installs Debian's postgresql)")
    return majors[max(majors)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=_drop_to_server_user(), check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise ServerUnavailable(f"{what} failed: {reason}")


def start_postgres(scratch: Scratch) -> LocalPostgres:
    """initdb, a certificate, and the server started in ``scratch``; returns once it answers."""
    binaries = server_binaries()
    root, data = scratch.path, scratch.path / "data"
    password = secrets.token_urlsafe(24)
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            + ["-days", "2", "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}"]
            + ["-keyout", str(root / "server.key"), "-out", str(root / "server.crt")],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        raise ServerUnavailable("openssl could not make the server's certificate (fix: ./install.sh)") from None
    (root / "server.key").chmod(0o600)
    (root / "server.crt").chmod(0o644)
    # Other users may read the certificate, by its path; nothing else here, and list nothing.
    root.chmod(0o711)
    # The superuser's password exists as a file only while initdb reads it, for the server's user alone.
    pwfile = scratch.write_private("pwfile", password)
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            for path in (root, pwfile, root / "server.key", root / "server.crt"):
                os.chown(path, user.pw_uid, user.pw_gid)
        _run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile)]
            + ["--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"],
            "initdb",
        )
    finally:
        pwfile.unlink()
    (data / "pg_hba.conf").write_text(
        "hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl all all ::1/128 scram-sha-256\n"
        "hostnossl all all all reject\n"
    )
    port = _free_port()
    settings = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": str(root),
        "unix_socket_permissions": "0700",  # pg_hba refuses local connections too
        "ssl": "on",
        "ssl_cert_file": str(root / "server.crt"),
        "ssl_key_file": str(root / "server.key"),
        "fsync": "off",  # a throwaway cluster: durability buys nothing here
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    server = scratch.start(
        [str(binaries / "postgres"), "-D", str(data), *(f"-c{k}={v}" for k, v in settings.items())],
        "postgres.log",
        signal.SIGINT,  # fast shutdown: clients are not waited for
        preexec_fn=_drop_to_server_user(),
    )
    local = LocalPostgres(HOST, port, password, root / "server.crt")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise ServerUnavailable(f"PostgreSQL exited at start: {scratch.log_tail('postgres.log')}")
        try:
            psycopg.connect(local.dsn(), connect_timeout=2).close()
            return local
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"PostgreSQL did not answer within {START_TIMEOUT_S:g} s: {error}") from None
            time.sleep(0.1)


def terminate_on_sigterm() -> None:
    """SIGTERM (``timeout``, CI, containers) ends the run as Ctrl-C does: cleanup runs."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
