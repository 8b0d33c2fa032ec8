"""install.sh's system step (``--system-only``) on machines made of stubs: PATH is a directory
holding only the utilities the script runs (bash, dirname, env) and the tools a case declares
present; ``apt-get`` records its calls (and refuses ``npm`` as Debian does when NodeSource's
nodejs is the candidate), ``dpkg-query`` says which nodejs is installed, ``id`` who runs it,
and ``SWIPESAVVY_POSTGRES_ROOT`` points at a fake ``/usr/lib/postgresql``.

Each case asserts the exit code, every line printed and every apt call, whole. Then the same
promises where the tests and ops look: the newest PostgreSQL major installed, and the tools
PyPI ships into the virtualenv found without it on PATH (tests/installed_tools.py)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import installed_tools
import pytest
import tls_postgres

from ops.rehearsal import local_postgres

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash")
UTILITIES = ("bash", "dirname", "env", "grep")  # the system step's commands that are not bash builtins
TOOLS = ("openssl", "cloud-init", "systemd-analyze", "dot", "jq", "python3", "node", "npm")
NODESOURCE_NODE = "20.20.2-1nodesource1"
DEBIAN_NODE = "18.19.0+dfsg-6~deb12u2"
UPDATE = "DEBIAN_FRONTEND=noninteractive apt-get update -q"
INSTALL = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
NOTHING_TO_DO = "install.sh: every system tool is present; no apt call"
# Debian's apt-get, asked for npm when it takes NodeSource's nodejs (installed or the candidate).
APT_REFUSES_NPM = [
    "The following packages have unmet dependencies:",
    " nodejs : Conflicts: npm",
    "E: Unable to correct problems, you have held broken packages.",
]
APT_OFFLINE = [
    "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease"
    "  Temporary failure resolving 'deb.debian.org'",
    "E: Some index files failed to download. They have been ignored, or old ones used instead.",
]
APT_GET = """echo "DEBIAN_FRONTEND=${{DEBIAN_FRONTEND-}} apt-get $*" >>{calls}
if [ "$1" = update ] && {offline}; then
  printf '%s\\n' {offline_lines} >&2
  exit 100
fi
if [ "$1" = install ] && {nodesource_repo}; then
  for package in "$@"; do
    if [ "$package" = npm ]; then
      printf '%s\\n' {refusal_out}
      echo {refusal_err} >&2
      exit 100
    fi
  done
fi"""


def without(*names: str) -> tuple[str, ...]:
    return tuple(tool for tool in TOOLS if tool not in names)


def _quoted(*lines: str) -> str:
    return " ".join(shlex.quote(line) for line in lines)


@dataclass(frozen=True)
class Machine:
    tools: tuple[str, ...] = TOOLS  # commands on PATH besides the utilities
    postgres_majors: tuple[str, ...] = ("15",)  # <root>/<major>/bin/postgres
    installed_node: str | None = NODESOURCE_NODE  # dpkg's nodejs version; None: not a dpkg package
    node_candidate: str | None = NODESOURCE_NODE  # apt-cache's before apt-get update; None: no lists yet
    nodesource_repo: bool = True  # apt-get takes NodeSource's nodejs, so it refuses npm
    offline: bool = False  # apt-get update cannot fetch
    uid: int = 0
    sudo: bool = False
    arguments: tuple[str, ...] = ("--system-only",)


DEBIAN_APT = {"node_candidate": DEBIAN_NODE, "nodesource_repo": False}  # no NodeSource repository


@dataclass
class Run:
    code: int
    stdout: list[str]
    stderr: list[str]
    apt_calls: list[str] = field(default_factory=list)


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def run_install(tmp_path: Path, machine: Machine) -> Run:
    """Run a copy of install.sh (alone in its directory: nothing past the system step can run)."""
    checkout, bin_dir, postgres_root = tmp_path / "checkout", tmp_path / "bin", tmp_path / "postgresql"
    for directory in (checkout, bin_dir, postgres_root):
        directory.mkdir()
    shutil.copy(ROOT / "install.sh", checkout / "install.sh")
    for major in machine.postgres_majors:
        (postgres_root / major / "bin").mkdir(parents=True)
        (postgres_root / major / "bin" / "postgres").touch(mode=0o755)
    for utility in UTILITIES:
        (bin_dir / utility).symlink_to(shutil.which(utility))
    for tool in machine.tools:
        _stub(bin_dir, tool, "exit 0")
    calls = tmp_path / "apt-calls"
    _stub(
        bin_dir,
        "apt-get",
        APT_GET.format(
            calls=calls,
            offline=str(machine.offline).lower(),
            offline_lines=_quoted(*APT_OFFLINE),
            nodesource_repo=str(machine.nodesource_repo).lower(),
            refusal_out=_quoted(*APT_REFUSES_NPM[:-1]),
            refusal_err=_quoted(APT_REFUSES_NPM[-1]),
        ),
    )
    candidate = machine.node_candidate or "(none)"
    _stub(bin_dir, "apt-cache", f"printf '%s\\n' nodejs: '  Installed: (none)' '  Candidate: {candidate}'")
    if machine.installed_node is None:
        _stub(bin_dir, "dpkg-query", "echo 'dpkg-query: no packages found matching nodejs' >&2; exit 1")
    else:
        _stub(bin_dir, "dpkg-query", f"printf %s '{machine.installed_node}'")
    _stub(bin_dir, "id", f"echo {machine.uid}")
    if machine.sudo:  # as Debian's sudo: the caller's environment is reset
        _stub(bin_dir, "sudo", f'echo "sudo $*" >>{calls}\nexec env -i PATH="$PATH" "$@"')
    done = subprocess.run(
        [str(checkout / "install.sh"), *machine.arguments],
        env={"PATH": str(bin_dir), "SWIPESAVVY_POSTGRES_ROOT": str(postgres_root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    apt_calls = calls.read_text().splitlines() if calls.exists() else []
    return Run(done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), apt_calls)


def test_nothing_missing_makes_no_apt_call(tmp_path):
    assert run_install(tmp_path, Machine()) == Run(0, [NOTHING_TO_DO], [], [])


def test_only_graphviz_missing_asks_apt_for_graphviz_alone(tmp_path):
    assert run_install(tmp_path, Machine(tools=without("dot"))) == Run(
        0, ["install.sh: apt package graphviz: no dot (ops rehearse --graph)"], [], [UPDATE, f"{INSTALL} graphviz"]
    )


def test_the_issues_machine_nodesource_node_with_its_npm_never_asks_for_npm(tmp_path):
    """Debian 12, NodeSource's node with its bundled npm, no cloud-init, shellcheck or Graphviz."""
    assert run_install(tmp_path, Machine(tools=without("cloud-init", "dot"))) == Run(
        0,
        [
            "install.sh: apt package cloud-init: no cloud-init (validates the backend's user data)",
            "install.sh: apt package graphviz: no dot (ops rehearse --graph)",
        ],
        [],
        [UPDATE, f"{INSTALL} cloud-init graphviz"],
    )


def test_nodesource_node_without_its_npm_stops_before_apt_with_the_fix(tmp_path):
    assert run_install(tmp_path, Machine(tools=without("npm", "dot"))) == Run(
        1,
        ["install.sh: apt package graphviz: no dot (ops rehearse --graph)"],
        [
            f"install.sh: node is NodeSource's nodejs {NODESOURCE_NODE} without its npm, and Debian's npm"
            " conflicts with it: reinstall nodejs from NodeSource (it bundles npm), then run ./install.sh again"
        ],
        [],
    )


def test_node_from_outside_dpkg_without_npm_stops_before_apt_naming_it(tmp_path):
    run = run_install(tmp_path, Machine(tools=without("npm"), installed_node=None))
    assert run == Run(
        1,
        [],
        [
            f"install.sh: {tmp_path}/bin/node is not Debian's nodejs and has no npm beside it:"
            " install npm from where that node came from, then run ./install.sh again"
        ],
        [],
    )


def test_debian_node_without_npm_asks_for_npm(tmp_path):
    machine = Machine(tools=without("npm"), installed_node=DEBIAN_NODE, **DEBIAN_APT)
    assert run_install(tmp_path, machine) == Run(
        0,
        [
            f"install.sh: apt package npm: no npm beside Debian's nodejs {DEBIAN_NODE} (the reference backend's packages)"
        ],
        [],
        [UPDATE, f"{INSTALL} npm"],
    )


def test_no_node_at_all_asks_for_nodejs_and_npm(tmp_path):
    machine = Machine(tools=without("node", "npm"), installed_node=None, **DEBIAN_APT)
    assert run_install(tmp_path, machine) == Run(
        0,
        [
            "install.sh: apt package nodejs: no node (the CloudFront function and the reference backend)",
            "install.sh: apt package npm: no npm (the reference backend's packages)",
        ],
        [],
        [UPDATE, f"{INSTALL} nodejs npm"],
    )


def test_no_node_with_nodesource_as_apts_candidate_asks_for_nodejs_alone(tmp_path):
    """NodeSource's nodejs bundles npm, and apt would refuse Debian's npm beside it."""
    machine = Machine(tools=without("node", "npm"), installed_node=None)
    assert run_install(tmp_path, machine) == Run(
        0,
        ["install.sh: apt package nodejs: no node (the CloudFront function and the reference backend)"],
        [],
        [UPDATE, f"{INSTALL} nodejs"],
    )


def test_apt_refusing_shows_apts_reason_then_one_line(tmp_path):
    """A fresh machine whose package lists are not downloaded yet cannot tell NodeSource's
    candidate: apt's own reason is shown, not hidden."""
    machine = Machine(tools=without("node", "npm"), installed_node=None, node_candidate=None)
    assert run_install(tmp_path, machine) == Run(
        1,
        [
            "install.sh: apt package nodejs: no node (the CloudFront function and the reference backend)",
            "install.sh: apt package npm: no npm (the reference backend's packages)",
        ],
        [
            *APT_REFUSES_NPM,
            "install.sh: apt-get install -y -q --no-install-recommends nodejs npm failed (apt's reason above);"
            " fix that, then run ./install.sh again",
        ],
        [UPDATE, f"{INSTALL} nodejs npm"],
    )


def test_apt_update_failing_stops_before_install_with_apts_reason(tmp_path):
    assert run_install(tmp_path, Machine(tools=without("jq"), offline=True)) == Run(
        1,
        ["install.sh: apt package jq: no jq (the drift workflow's issue script)"],
        [
            *APT_OFFLINE,
            "install.sh: apt-get update -q failed (apt's reason above); fix that, then run ./install.sh again",
        ],
        [UPDATE],
    )


def test_no_python3_with_venv_asks_for_python3_venv(tmp_path):
    assert run_install(tmp_path, Machine(tools=without("python3"))) == Run(
        0,
        ["install.sh: apt package python3-venv: no python3 with ensurepip (the virtualenv)"],
        [],
        [UPDATE, f"{INSTALL} python3-venv"],
    )


def test_no_postgresql_server_asks_for_postgresql(tmp_path):
    assert run_install(tmp_path, Machine(postgres_majors=())) == Run(
        0,
        [
            f"install.sh: apt package postgresql: no PostgreSQL server under {tmp_path}/postgresql"
            " (the provider tests run a TLS server)"
        ],
        [],
        [UPDATE, f"{INSTALL} postgresql"],
    )


@pytest.mark.parametrize("majors", [("17",), ("15", "17")], ids=["debian-13", "both"])
def test_any_postgresql_major_is_enough(tmp_path, majors):
    assert run_install(tmp_path, Machine(postgres_majors=majors)) == Run(0, [NOTHING_TO_DO], [], [])


def test_not_root_goes_through_sudo_keeping_the_noninteractive_frontend(tmp_path):
    run = run_install(tmp_path, Machine(tools=without("jq"), uid=1000, sudo=True))
    assert run == Run(
        0,
        ["install.sh: apt package jq: no jq (the drift workflow's issue script)"],
        [],
        [
            f"sudo {UPDATE.replace('DEBIAN_FRONTEND', 'env DEBIAN_FRONTEND')}",
            UPDATE,
            f"sudo {INSTALL.replace('DEBIAN_FRONTEND', 'env DEBIAN_FRONTEND')} jq",
            f"{INSTALL} jq",
        ],
    )


def test_not_root_without_sudo_stops_before_apt(tmp_path):
    assert run_install(tmp_path, Machine(tools=without("jq"), uid=1000)) == Run(
        1,
        ["install.sh: apt package jq: no jq (the drift workflow's issue script)"],
        ["install.sh: apt-get needs root for jq: run ./install.sh as root, or install sudo"],
        [],
    )


def test_an_unknown_argument_stops_before_anything(tmp_path):
    assert run_install(tmp_path, Machine(tools=without("jq"), arguments=("--system_only",))) == Run(
        1, [], ["install.sh: unknown argument --system_only (usage: ./install.sh [--system-only])"], []
    )


# --- the same root and any major where ops and the tests start the server ---------------------


def _postgres_root(tmp_path: Path, *majors: str) -> Path:
    for major in majors:
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "postgres").touch(mode=0o755)
    return tmp_path


@pytest.mark.parametrize(
    ("majors", "newest"), [(("15",), "15"), (("17",), "17"), (("9", "15", "17"), "17"), (("17", "rc"), "17")]
)
def test_the_newest_installed_major_is_taken_numerically(tmp_path, monkeypatch, majors, newest):
    monkeypatch.setenv("SWIPESAVVY_POSTGRES_ROOT", str(_postgres_root(tmp_path, *majors)))
    assert local_postgres.server_binaries() == tmp_path / newest / "bin"


def test_no_server_under_the_root_is_one_line_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SWIPESAVVY_POSTGRES_ROOT", str(_postgres_root(tmp_path)))
    with pytest.raises(local_postgres.ServerUnavailable) as raised:
        local_postgres.server_binaries()
    assert (
        str(raised.value) == f"no PostgreSQL server under {tmp_path} (fix: ./install.sh installs Debian's postgresql)"
    )


def test_the_tests_tls_server_takes_the_same_binaries_as_ops():
    assert tls_postgres.server_binaries is local_postgres.server_binaries


# --- the tools PyPI ships into the virtualenv, found without it on PATH ----------------------


def test_a_tool_only_in_the_interpreters_bin_is_found(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert installed_tools.find_tool("shellcheck") == str(Path(sys.executable).parent / "shellcheck")


def test_the_interpreters_copy_comes_before_paths(tmp_path, monkeypatch):
    (tmp_path / "ruff").touch(mode=0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert installed_tools.find_tool("ruff") == str(Path(sys.executable).parent / "ruff")


def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        installed_tools.require_tool("no-such-tool", "the reason")
    assert str(failed.value) == (
        "no-such-tool is not installed on this machine (the reason); CI has just run install.sh, so this is a broken install"
    )
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception) as skipped:
        installed_tools.require_tool("no-such-tool", "the reason")
    assert str(skipped.value) == "no-such-tool is not installed on this machine (the reason)"
