#!/usr/bin/env bash
# The dashboard tests drive the system's Chromium (Debian's package): install it when it is missing.
set -euo pipefail
for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ -n "${QUANTDESK_CHROMIUM:-}" ] && [ -x "$QUANTDESK_CHROMIUM" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing and this is not a Debian-like system: install Chromium, or set QUANTDESK_CHROMIUM" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "Chromium is missing: run 'apt-get install chromium' as root (or set QUANTDESK_CHROMIUM)" >&2
        exit 1
    fi
fi
echo "installing Debian's chromium package for the dashboard tests" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
