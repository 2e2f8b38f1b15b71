#!/usr/bin/env bash
# Installs the system packages flowsafe and its tests need, only when missing.
# Debian/Ubuntu: restic, MariaDB server + client, PHP CLI with mysqli, python3-venv, and for
# the report tests chromium (renders the HTML) and poppler-utils (pdftotext), php-zip (ITFlow's
# AES archives, written by PHP in the tests) and zbar-tools (zbarimg reads the sheet's QR codes).
set -euo pipefail

missing=()
command -v restic >/dev/null || missing+=(restic)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb-dump >/dev/null || missing+=(mariadb-client)
php_modules="$(php -m 2>/dev/null || true)"
command -v php >/dev/null || missing+=(php-cli)
grep -qix mysqli <<<"$php_modules" || missing+=(php-mysql)
grep -qix zip <<<"$php_modules" || missing+=(php-zip)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v chromium >/dev/null || missing+=(chromium)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
command -v zbarimg >/dev/null || missing+=(zbar-tools)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "Installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
