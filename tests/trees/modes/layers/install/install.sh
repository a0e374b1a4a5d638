#!/bin/sh
set -eu
mkdir -p /opt/payload
cp -Rp payload/. /opt/payload/
