#!/bin/sh
echo "deliberately broken" >&2
exit 7
