#!/usr/bin/env bash
# Installs what the tests need, then runs them all, then the lints. This is
# the README's test command and what CI runs (.ci/run); it needs no AWS
# account. It builds into the same target directory as the README's first
# command (./target, or $CARGO_TARGET_DIR), so a machine builds once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Formatting first: it costs nothing.
cargo fmt --check

# The browser tests need Debian's chromium.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium for the browser tests" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The scanner tests run against moto server (pinned, in a venv outside the clone).
AMIAUDIT_MOTO_SERVER="$(bash scripts/install-moto.sh)"
export AMIAUDIT_MOTO_SERVER

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi

# Lints on every target, warnings as errors (deny unwrap/panic outside tests).
cargo clippy --all-targets --quiet -- -D warnings
