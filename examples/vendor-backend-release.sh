#!/usr/bin/env bash
# The reference backend's npm packages, exactly as its lockfile pins them, into
# examples/backend-release/node_modules, which the release archive packs (the instance runs no
# npm). Run by install.sh and by the workflows before `pulumi preview`/`up`. No optional native
# addons (dd-trace runs without them, on arm64 too), no install scripts, no .bin symlinks (a
# release holds regular files only), and no npm bookkeeping file: the same lockfile gives the
# same files, so the same release sha256, on every machine.
set -euo pipefail
cd "$(dirname "$0")/backend-release"
npm ci --omit=dev --omit=optional --ignore-scripts --no-bin-links --no-audit --no-fund --loglevel=error
rm -f node_modules/.package-lock.json
