#!/usr/bin/env bash
# Installs the pinned moto server (the AWS emulator the scanner tests run
# against) into a venv outside the clone and prints the path of moto_server.
# Idempotent: a venv that already has the pinned version is reused.
set -euo pipefail
MOTO_VERSION="5.2.5"
VENV="${AMIAUDIT_MOTO_VENV:-$HOME/.cache/amiaudit/moto-venv}"
if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "installing moto[server]==$MOTO_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi
echo "$VENV/bin/moto_server"
