#!/usr/bin/env bash
# Installs the Debian packages the tests need, if they are missing (idempotent; run as root or via sudo):
#   - mosquitto: a real MQTT broker (3.1.1 + 5, websockets built in) started by tests/support/brokers.ts
#     with its own config, ports and temp dir. Debian's package also ships mosquitto_passwd.
#   - chromium: headless browser for the H5 tests (driven by playwright-core, executablePath /usr/bin/chromium).
#   - fonts-wqy-microhei: a CJK font, so the demo's Chinese labels render in the browser screenshots.
#   - postgresql: the server binaries (/usr/lib/postgresql/<version>/bin) for the store tests, which run their own
#     throwaway server in a temp dir (tests/support/postgres.ts).
#   - redis-server: Redis for the cluster tests (tests/support/redis.ts runs its own on a free port, temp dir).
# The packages' own system services (the broker on port 1883 from /etc/mosquitto/mosquitto.conf, the "main"
# PostgreSQL cluster on port 5432, Redis on port 6379) are never left running: service starts are blocked during the install and any
# daemon that got started anyway is stopped.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=''
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO='sudo -E'; else
    echo "install-system.sh: need root (or sudo) to install packages" >&2
    exit 1
  fi
fi

# package -> a file that proves it is installed (a glob: the PostgreSQL version differs between Debian releases)
declare -A WANT=(
  [mosquitto]=/usr/sbin/mosquitto
  [chromium]=/usr/bin/chromium
  [fonts-wqy-microhei]=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
  [postgresql]='/usr/lib/postgresql/*/bin/initdb'
  [redis-server]=/usr/bin/redis-server
)
# True when the glob (or plain path) names at least one existing file.
exists() { compgen -G "$1" >/dev/null; }

missing=()
for pkg in mosquitto chromium fonts-wqy-microhei postgresql redis-server; do
  if ! exists "${WANT[$pkg]}" || ! dpkg -s "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
# mosquitto_passwd comes with the mosquitto package on Debian 12; mosquitto-clients only if a distro split it off.
if [ -x /usr/sbin/mosquitto ] && ! command -v mosquitto_passwd >/dev/null 2>&1 \
   && [ ! -x /usr/bin/mosquitto_passwd ] && [ ! -x /usr/sbin/mosquitto_passwd ]; then
  missing+=(mosquitto-clients)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-system.sh: installing ${missing[*]}"
  # Keep maintainer scripts from starting services (the mosquitto postinst would start a broker on :1883, the
  # postgresql one its new "main" cluster on :5432, redis-server's a server on :6379).
  policy=/usr/sbin/policy-rc.d
  added_policy=''
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=yes
  fi
  cleanup_policy() { if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi; }
  trap cleanup_policy EXIT

  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

  # Second pass for mosquitto_passwd, in case the mosquitto package just installed does not carry it.
  if ! command -v mosquitto_passwd >/dev/null 2>&1 && [ ! -x /usr/bin/mosquitto_passwd ]; then
    $SUDO apt-get install -y -qq --no-install-recommends mosquitto-clients
  fi
fi

# Never leave the distro's broker running (it would hold :1883) nor enabled at boot.
if [ -e /etc/init.d/mosquitto ]; then
  if command -v update-rc.d >/dev/null 2>&1; then $SUDO update-rc.d mosquitto disable >/dev/null 2>&1 || true; fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now mosquitto.service >/dev/null 2>&1 || true
  fi
fi
pidfile=/run/mosquitto/mosquitto.pid
if [ -s "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = mosquitto ]; then
    echo "install-system.sh: stopping the system mosquitto (pid $pid)"
    $SUDO kill "$pid" || true
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  $SUDO rm -f "$pidfile"
fi

# Nor a PostgreSQL cluster of the distro (the package creates "main" on :5432), now or at boot.
if command -v pg_lsclusters >/dev/null 2>&1; then
  if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/postgresql ]; then $SUDO update-rc.d postgresql disable >/dev/null 2>&1 || true; fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now postgresql.service >/dev/null 2>&1 || true
  fi
  while read -r pg_ver pg_name _port pg_status _rest; do
    case "$pg_status" in
      online*)
        echo "install-system.sh: stopping the PostgreSQL cluster $pg_ver/$pg_name"
        $SUDO pg_ctlcluster "$pg_ver" "$pg_name" stop || true
        ;;
    esac
  done < <(pg_lsclusters -h 2>/dev/null || true)
fi

# Nor the distro's Redis (it would hold :6379), now or at boot.
if [ -e /etc/init.d/redis-server ]; then
  if command -v update-rc.d >/dev/null 2>&1; then $SUDO update-rc.d redis-server disable >/dev/null 2>&1 || true; fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now redis-server.service >/dev/null 2>&1 || true
  fi
fi
pidfile=/run/redis/redis-server.pid
if [ -s "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = redis-server ]; then
    echo "install-system.sh: stopping the system redis-server (pid $pid)"
    $SUDO kill "$pid" || true
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  $SUDO rm -f "$pidfile"
fi

# Prove the binaries run (mosquitto -h exits non-zero by design, so only its output is checked).
mosq_version="$( (/usr/sbin/mosquitto -h 2>&1 || true) | sed -n '1p')"
case "$mosq_version" in *'mosquitto version'*) ;; *) echo "install-system.sh: mosquitto does not run" >&2; exit 1 ;; esac
command -v mosquitto_passwd >/dev/null 2>&1 || [ -x /usr/bin/mosquitto_passwd ] \
  || { echo "install-system.sh: mosquitto_passwd missing" >&2; exit 1; }
chromium_version="$(chromium --version 2>/dev/null)" || { echo "install-system.sh: chromium does not run" >&2; exit 1; }
pg_bin="$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1)")"
pg_version="$("$pg_bin/postgres" --version 2>/dev/null)" || { echo "install-system.sh: postgres does not run" >&2; exit 1; }
"$pg_bin/initdb" --version >/dev/null 2>&1 && [ -x "$pg_bin/pg_ctl" ] \
  || { echo "install-system.sh: initdb or pg_ctl missing in $pg_bin" >&2; exit 1; }
redis_version="$(/usr/bin/redis-server --version 2>/dev/null)" || { echo "install-system.sh: redis-server does not run" >&2; exit 1; }
echo "install-system.sh: ok: $mosq_version; $chromium_version; $pg_version; ${redis_version%% sha=*}"
