#!/usr/bin/env bash
# Checks the client harness itself: runs tests/ftp/clients.py against
# pyftpdlib (a server that is not ours) in plaintext and explicit FTPS with
# TLS 1.2 and 1.3. Needs pyftpdlib and pyopenssl: give their Python as
# PYTHON (default: python3), e.g. a venv made with
#   python3 -m venv /tmp/ftpvenv && /tmp/ftpvenv/bin/pip install pyftpdlib pyopenssl
# usage: tests/ftp/validate-reference.sh [MODE...] [-- CLIENTS.PY OPTIONS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
modes=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do modes+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#modes[@]} -gt 0 ] || modes=(plain tls12 tls13)

work=$(mktemp -d /tmp/ftp-reference.XXXXXX)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/home"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# pyftpdlib 2.2's own bugs, which the harness must (and does) catch; they
# are reported as "xfail" here instead of failing the run:
# - 501 for a missing directory: rclone can't copy into a new one;
# - an upload ended by a TCP reset is answered 226 (the truncated file is
#   kept as if complete), or not at all;
# - over TLS 1.3, rclone and lftp uploads arrive short (it reads the data
#   connection's end before the last records: the truncation trap).
known=(--xfail "copy into a new directory" --xfail "not reported complete"
       --xfail "rclone/tls13: copy, check" --xfail "lftp/tls13: mirror -R")

status=0
for mode in "${modes[@]}"; do
    tls=()
    case $mode in
        plain) ;;
        tls12) tls=(--tls "$work/cert.pem" "$work/key.pem" --tls-max 1.2) ;;
        tls13) tls=(--tls "$work/cert.pem" "$work/key.pem" --tls-max 1.3) ;;
        *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
    coproc SERVER { exec "$py" "$here/reference_server.py" --home "$work/home" \
        --user u --password p "${tls[@]}" 2>"$work/server-$mode.log"; }
    server=$SERVER_PID
    read -r line <&"${SERVER[0]}"
    port=${line##*:}
    echo "== pyftpdlib, $mode, port $port"
    python3 "$here/clients.py" --port "$port" --user u --password p --mode "$mode" \
        --reuse-required no --workdir "$work/clients-$mode" "${known[@]}" "$@" || status=1
    kill "$server"; wait "$server" 2>/dev/null || true; server=
done
exit $status
