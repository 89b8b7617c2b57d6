#!/usr/bin/env bash
# Installs the tests' Python: the pinned moto server (the AWS emulator the
# scanner tests run against) and the validators consumers use (jsonschema
# for findings.json and OCSF, xmlschema for junit.xml), into a venv outside
# the clone, and prints the path of moto_server. Idempotent: a venv that
# already has the pinned versions is reused.
set -euo pipefail
MOTO_VERSION="5.2.5"
JSONSCHEMA_VERSION="4.26.0"
XMLSCHEMA_VERSION="4.3.2"
VENV="${AMIAUDIT_MOTO_VENV:-$HOME/.cache/amiaudit/moto-venv}"
pinned() {
  "$VENV/bin/python" - "$MOTO_VERSION" "$JSONSCHEMA_VERSION" "$XMLSCHEMA_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
wanted = dict(zip(["moto", "jsonschema", "xmlschema"], sys.argv[1:]))
sys.exit(any(version(name) != v for name, v in wanted.items()))
PY
}
if [ ! -x "$VENV/bin/moto_server" ] || ! pinned; then
  echo "installing moto[server]==$MOTO_VERSION and the validators into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "jsonschema==$JSONSCHEMA_VERSION" "xmlschema==$XMLSCHEMA_VERSION" >&2
fi
echo "$VENV/bin/moto_server"
