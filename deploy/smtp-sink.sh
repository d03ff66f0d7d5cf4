#!/usr/bin/env bash
# Postfix's smtp-sink, an SMTP server that accepts everything at some 7,000 messages/s
# here: what the mailer benchmark sends to. Usage: deploy/smtp-sink.sh PORT (foreground).
source "$(dirname "$0")/common.sh"
command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || apt_install postfix
user_args=()
[ "$(id -u)" = 0 ] && user_args=(-u nobody)  # it refuses to run as root without a user to become
exec /usr/sbin/smtp-sink -c "${user_args[@]}" "127.0.0.1:${1:-2525}" 1024
