#!/usr/bin/env bash
# Makes sure the binaries of the real servers the tests start are installed:
# redis-server (with redis-cli), PostgreSQL and MariaDB from Debian's packages, and Debian's chromium
# for the dashboard's browser tests (playwright-core drives it; it downloads no browser).
# Installs them with apt-get when running as root; otherwise says what to install and fails.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# redis-cli creates the 3-node Cluster of the Cluster tests (scripts/servers/cluster.ts).
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || missing+=(mariadb-server)
{ command -v mariadb >/dev/null 2>&1 || [ -x /usr/bin/mariadb ]; } || missing+=(mariadb-client)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "[superspreader] the tests need real servers and a browser; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "[superspreader] installing ${missing[*]} with apt-get" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
