#!/bin/sh
set -eu
mkdir -p /opt/hello
uname -m > /opt/hello/arch.txt
echo "built" > /opt/hello/built.txt
