#!/bin/sh
echo good > /good
