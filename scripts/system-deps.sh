#!/usr/bin/env bash
# System packages the reactor needs: Tesseract (OCR), DejaVu fonts (test pages), venv support;
# and, for the dashboard's browser tests, Debian's chromium (never a browser a tool downloads).
# As root, installs what is missing with apt-get; otherwise prints the exact command and fails
# for the required ones, and only warns for chromium (those tests then skip, saying why).
set -euo pipefail

missing=()
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr tesseract-ocr-eng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
optional=()
[ -x /usr/bin/chromium ] || optional+=(chromium)

if [ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then
  exit 0
fi
wanted=("${missing[@]}" "${optional[@]}")
cmd="apt-get update && apt-get install -y --no-install-recommends ${wanted[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ ${#missing[@]} -eq 0 ]; then
    echo "note: the dashboard's browser tests will skip without Debian's chromium; as root: $cmd" >&2
    exit 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "mongo-reactor needs system packages: ${wanted[*]}" >&2
    echo "run as root:  sudo sh -c '$cmd'" >&2
  else
    echo "mongo-reactor needs: ${wanted[*]} (no apt-get here: install them with your package manager)" >&2
  fi
  exit 1
fi
echo "installing system packages: ${wanted[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#optional[@]} -gt 0 ] &&
  ! apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null; then
  echo "note: chromium could not be installed; the dashboard's browser tests will skip" >&2
fi
