#!/usr/bin/env bash
# Installs the system packages flowsafe needs, only when missing (Debian 12 / Ubuntu).
#   install-deps.sh run   what a server running flowsafe needs (make install): restic, the
#                         MariaDB client, PHP CLI with mysqli and zip (ITFlow's AES archives),
#                         python3-venv, git, and DejaVu Sans Mono for the recovery sheet
#   install-deps.sh       the same plus what the tests and the demo use (make test, make demo):
#                         MariaDB server, chromium (renders the HTML report), poppler-utils
#                         (pdftotext, pdftoppm) and zbar-tools (reads the sheet's QR codes)
set -euo pipefail

profile=${1:-dev}
case "$profile" in
    run|dev) ;;
    *) echo "usage: $0 [run|dev]" >&2; exit 2 ;;
esac

missing=()
command -v restic >/dev/null || missing+=(restic)
command -v mariadb-dump >/dev/null || missing+=(mariadb-client)
command -v php >/dev/null || missing+=(php-cli)
modules=$(php -m 2>/dev/null || true)
grep -qix mysqli <<<"$modules" || missing+=(php-mysql)
grep -qix zip <<<"$modules" || missing+=(php-zip)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v git >/dev/null || missing+=(git)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ] || missing+=(fonts-dejavu-core)
if [ "$profile" = dev ]; then
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v pdftotext >/dev/null || missing+=(poppler-utils)
    command -v zbarimg >/dev/null || missing+=(zbar-tools)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "Installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
