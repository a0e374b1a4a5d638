#!/bin/sh
echo "line one"
echo "line two"
echo "line three"
echo "the last line before failing"
exit 5
