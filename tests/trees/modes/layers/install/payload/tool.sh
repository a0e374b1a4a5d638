#!/bin/sh
echo payload
