#!/usr/bin/env bash
# Set up everything `make demo` and `make test` need on a fresh Debian/Ubuntu machine:
# a Python >= 3.11 virtualenv with simbank and its dev tools, and Debian's mosquitto; with
# `test`, also Debian's chromium (the dashboard's browser test) and prometheus (its promtool
# checks the shipped alert rules).
# Idempotent: a second run only checks. Usage: scripts/bootstrap.sh [VENV_DIR] [test]
set -euo pipefail
venv=${1:-.venv}
purpose=${2:-demo}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

is_root() { [ "$(id -u)" -eq 0 ]; }
apt_install() {
  # apt_install PKG...: install Debian packages as root, or print the exact line and fail.
  if is_root; then
    if [ ! -f /tmp/.simbank-apt-updated ]; then
      apt-get update -qq && touch /tmp/.simbank-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "simbank needs: sudo apt-get install -y $*" >&2
    exit 1
  fi
}

# 1. A Python >= 3.11.
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$(command -v "$candidate"); break
  fi
done
if [ -z "$python" ]; then
  apt_install python3 python3-venv
  python=$(command -v python3)
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "simbank needs Python >= 3.11; this system's python3 is older" >&2; exit 1; }
fi

# 2. The virtualenv (python3-venv provides ensurepip on Debian).
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    ver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${ver}-venv" || apt_install python3-venv
    "$python" -m venv "$venv"
  fi
fi

# 3. simbank and its dev tools, re-installed when pyproject.toml changes.
stamp="$venv/.simbank-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# 4. mosquitto, for the demo's private broker and the tests.
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  apt_install mosquitto
fi

# 5. For the tests: a browser and promtool. Without root they are only named: the tests that
# need them skip with the same line as their reason.
if [ "$purpose" = test ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  if [ ${#missing[@]} -gt 0 ]; then
    if is_root; then
      apt_install "${missing[@]}"
    else
      echo "simbank tests skip the browser/promtool checks; to run them: sudo apt-get install -y ${missing[*]}" >&2
    fi
  fi
fi
