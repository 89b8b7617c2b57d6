#!/usr/bin/env bash
# Installs what the tests need, then runs them all, with the lints. This is
# the README's test command and what CI runs (.ci/run); it needs no AWS
# account. It builds into the same target directory as the README's first
# command (./target, or $CARGO_TARGET_DIR), so a machine builds once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Formatting first: it costs nothing.
cargo fmt --check

# The installs use the network, not the cores: they run while cargo builds.
logs="$(mktemp -d)"
apt_pid=""
moto_pid=""
# On any exit: stop an install still running, then remove its logs.
trap 'for p in $apt_pid $moto_pid; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$logs"' EXIT
# Debian packages: chromium for the browser tests, openssl to check a
# signed manifest as an auditor would.
packages=""
command -v chromium >/dev/null 2>&1 || packages="$packages chromium"
command -v openssl >/dev/null 2>&1 || packages="$packages openssl"
if [ -n "$packages" ]; then
  echo "installing$packages for the tests (in the background)" >&2
  # sudo -n: fail at once rather than wait, unseen, for a password.
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  ( $SUDO apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $packages ) >"$logs/apt" 2>&1 &
  apt_pid=$!
fi
# The scanner tests run against moto server (pinned, in a venv outside the clone).
bash scripts/install-moto.sh >"$logs/moto" 2>"$logs/moto.err" &
moto_pid=$!

# The lints ride on the test build: clippy-driver compiles this crate's own
# targets (warnings are errors; unwrap and panic are denied outside tests,
# see Cargo.toml), while the dependencies are compiled once, by rustc, and
# shared with `cargo run`. `cargo clippy` would compile every dependency a
# second time, in check mode (4 minutes on a fresh 2-core machine).
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
if [ -z "$RUSTC_WORKSPACE_WRAPPER" ]; then
  echo "error: clippy-driver not found; install clippy (rustup component add clippy)" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-run
else
  cargo test --no-run
fi
# The benchmark harnesses are linted too (built, not run).
cargo build --benches --quiet

if ! wait "$moto_pid"; then
  cat "$logs/moto.err" >&2
  echo "error: installing moto server failed (scripts/install-moto.sh)" >&2
  exit 1
fi
moto_pid=""
cat "$logs/moto.err" >&2
AMIAUDIT_MOTO_SERVER="$(cat "$logs/moto")"
export AMIAUDIT_MOTO_SERVER
if [ -n "$apt_pid" ] && ! wait "$apt_pid"; then
  cat "$logs/apt" >&2
  echo "error: installing$packages failed" >&2
  exit 1
fi
apt_pid=""

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi
