#!/usr/bin/env bash
# For the tests only: a real WordPress to test the companion plugin against. Installs Debian's
# `wordpress` package with PHP's CLI (its built-in server serves the site) and the MariaDB client,
# and starts the machine's MariaDB server if it is not running. Idempotent.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
[ -f /usr/share/wordpress/wp-load.php ] || missing+=(wordpress)
command -v php >/dev/null 2>&1 || missing+=(php-cli)
php -m 2>/dev/null | grep -x mysqli >/dev/null || missing+=(php-mysql)
command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-wordpress: installing ${missing[*]} from Debian's packages"
  log=$(mktemp)
  # policy-rc.d keeps the pulled-in apache2 from starting; PHP's built-in server is used instead.
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" php-cli php-mysql; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
fi

if ! mariadb -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; then
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "setup-wordpress: installing mariadb-server"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
  fi
  echo "setup-wordpress: starting MariaDB"
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do
    mariadb -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
fi
mariadb -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null
