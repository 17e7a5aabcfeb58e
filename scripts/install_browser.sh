#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the real-browser UI test.
case "${1:-}" in -h|--help) sed -n "2,2p" "$0" | sed "s/^# \{0,1\}//"; exit 0;; esac
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
