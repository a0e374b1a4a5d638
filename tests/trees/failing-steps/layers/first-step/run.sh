#!/bin/sh
echo first step ran > /first
