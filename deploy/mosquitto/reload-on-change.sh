#!/bin/sh
# Run Mosquitto and send it SIGHUP whenever its password or ACL file changes, so
# rapidtrace's device registry takes effect (a revoked reader is refused) without
# restarting the broker. Runs in the eclipse-mosquitto image (busybox sh).
set -eu

conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
auth_dir="${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}"
interval="${MOSQUITTO_RELOAD_CHECK_S:-2}"

fingerprint() {
    cat "$auth_dir/passwd" "$auth_dir/acl" 2>/dev/null | cksum
}

/usr/sbin/mosquitto -c "$conf" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT

last="$(fingerprint)"
while kill -0 "$pid" 2>/dev/null; do
    sleep "$interval" &
    wait $! || true
    now="$(fingerprint)"
    if [ "$now" != "$last" ]; then
        last="$now"
        echo "reload-on-change: password/ACL file changed; sending SIGHUP to mosquitto"
        kill -HUP "$pid" 2>/dev/null || true
    fi
done
wait "$pid"
