#!/bin/sh
echo "line one"
echo "line two"
echo "line three" >&2
echo "the last line before failing"
exit 5
