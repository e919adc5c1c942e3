#!/usr/bin/env bash
# Installs the dev dependencies (idempotent; `npm install`, not `npm ci`,
# which failed here on lockfiles missing other platforms' optional packages)
# and runs `npm test`: tsc build, then node --test over dist/test/.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund
npm test
