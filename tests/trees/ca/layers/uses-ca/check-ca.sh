#!/bin/sh
set -eu
# Every HTTPS client variable points at the mounted bundle while the step runs.
test -r "$SSL_CERT_FILE"
test "$PIP_CERT" = "$SSL_CERT_FILE"
grep -q "BEGIN CERTIFICATE" "$SSL_CERT_FILE"
echo "ca was visible" > /ca-check.txt
