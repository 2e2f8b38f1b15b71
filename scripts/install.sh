#!/usr/bin/env bash
# make install: flowsafe on a Debian 12 / Ubuntu server as it is, from this clone.
# The system packages it needs (scripts/install-deps.sh run), flowsafe and its Python
# libraries in a virtualenv at $PREFIX (default /opt/flowsafe; Debian's own Python is
# "externally managed", so never pip install into it), the command linked as
# $BINDIR/flowsafe (default /usr/local/bin). Run it again to update: it is idempotent.
# SKIP_DEPS=1 leaves the system packages alone.
set -euo pipefail

PREFIX=${PREFIX:-/opt/flowsafe}
BINDIR=${BINDIR:-/usr/local/bin}
clone=$(cd "$(dirname "$0")/.." && pwd)

[ -n "${SKIP_DEPS:-}" ] || "$clone/scripts/install-deps.sh" run
if ! "$PREFIX/bin/python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null
then
    python3 -m venv "$PREFIX"
fi
"$PREFIX/bin/pip" install --quiet --disable-pip-version-check "$clone"
mkdir -p "$BINDIR"
ln -sfn "$PREFIX/bin/flowsafe" "$BINDIR/flowsafe"
# Where a new server clones flowsafe from: the recovery sheet prints it ([sheet] source
# in the config wins).
origin=$(git -C "$clone" remote get-url origin 2>/dev/null | sed -E 's#://[^/@]+@#://#' || true)
if [ -n "$origin" ]; then
    printf '%s\n' "$origin" >"$PREFIX/flowsafe-source"
fi
"$BINDIR/flowsafe" --help >/dev/null
echo "flowsafe installed in $PREFIX; the command is $BINDIR/flowsafe"
