#!/usr/bin/env bash
# samba-test.sh - run a command with the Samba AD lab DC up and its details exported.
#
# Usage: scripts/samba-test.sh [command [args...]]
#   Starts the throw-away Samba AD DC of ../shared/lab/samba-ad-lab.sh (installs
#   the Debian packages and provisions on first use; needs root), exports the
#   SAMBA_AD_* variables from $SAMBA_AD_DIR/env.sh, and runs the command
#   (default: the directory integration tests). Its exit status is the command's.
#   A DC this script started is stopped again on exit; one that was already
#   running is left running.
#
# Environment:
#   SVCWATCH_SHARED   the shared reference directory   [<repo>/../shared]
#   SAMBA_AD_DIR      lab state directory (see the lab script) [/tmp/samba-ad-lab]
#   SAMBA_TEST_KEEP=1 leave a DC this script started running
#   (every SAMBA_AD_* setting of the lab script is passed through)
#
# Exported to the command (names as the lab writes them):
#   SAMBA_AD_LDAP_URL SAMBA_AD_LDAPS_URL SAMBA_AD_BASE_DN SAMBA_AD_BIND_DN
#   SAMBA_AD_BIND_UPN SAMBA_AD_BIND_PASSWORD SAMBA_AD_ADMIN_DN SAMBA_AD_ADMIN_PASSWORD
#   SAMBA_AD_CA_CERT SAMBA_AD_TLS_SERVER_NAME SAMBA_AD_REALM SAMBA_AD_DOMAIN
#   SAMBA_AD_DC_FQDN SAMBA_AD_LDAP_SPN SAMBA_AD_KRB5_CONFIG SAMBA_AD_KDC SAMBA_AD_PID
#   SVCWATCH_REQUIRE_SAMBA=1 (Samba tests fail instead of skipping when the lab is missing)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SVCWATCH_SHARED:-$ROOT/../shared}
LAB=$SHARED/lab/samba-ad-lab.sh
STATE=${SAMBA_AD_DIR:-/tmp/samba-ad-lab}

[[ -r $LAB ]] || { echo "samba-test: $LAB not found; set SVCWATCH_SHARED to the shared directory" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "samba-test: the Samba AD DC needs root; run as root (e.g. in CI or a container)" >&2; exit 2; }

started=0
if ! SAMBA_AD_QUIET=1 bash "$LAB" status >/dev/null 2>&1; then
  started=1
fi
stop_lab() {
  if [[ $started == 1 && ${SAMBA_TEST_KEEP:-0} != 1 ]]; then
    SAMBA_AD_QUIET=1 bash "$LAB" stop >/dev/null 2>&1 || echo "samba-test: stopping the lab failed; run: bash $LAB stop" >&2
  fi
}
trap stop_lab EXIT

echo "samba-test: starting the Samba AD lab (first run installs packages and provisions; a few minutes)" >&2
if ! SAMBA_AD_QUIET=1 bash "$LAB" start >/dev/null; then
  echo "samba-test: the Samba AD lab did not start; see $STATE/log/samba.log" >&2
  exit 2
fi

set -a
# shellcheck disable=SC1091
. "$STATE/env.sh"
set +a
export SVCWATCH_REQUIRE_SAMBA=1
[[ -n ${SAMBA_AD_LDAPS_URL:-} ]] || { echo "samba-test: $STATE/env.sh did not define SAMBA_AD_LDAPS_URL" >&2; exit 2; }
echo "samba-test: DC up at $SAMBA_AD_LDAPS_URL ($SAMBA_AD_REALM)" >&2

cd "$ROOT"
if [[ $# == 0 ]]; then
  set -- go test -race -count=1 ./internal/directory/...
fi
rc=0
"$@" || rc=$?
exit "$rc"
