#!/usr/bin/env bash
# Install everything the tests need and run them - on a FRESH Debian machine too.
#
#   scripts/test.sh [pytest args...]
#
# 1. apt: apache2-utils (htpasswd), gettext-base (GNU envsubst), postgresql (initdb/pg_ctl/psql), coturn (turnserver), tmux.
#    Needs root or password-less sudo; otherwise skipped with a message.  Skipped as well when
#    dpkg already reports every package installed (set WIZARD_FORCE_APT=1 to run it anyway).
# 2. pip: `python -m pip install -e '.[test]'` into the active venv ($VIRTUAL_ENV), or into the
#    python3 on PATH, or - when that python3 is "externally managed" (Debian's own) - into ./.venv.
# 3. `python -m pytest -q -n auto --dist loadscope "$@"` (pytest-xdist: one worker per core, a module's
#    tests on one worker so that its fixtures are built once; WIZARD_TEST_WORKERS=0 runs serially);
#    the exit code is pytest's.  Exit code 5 (no tests collected) stays a failure.
#    The in-process tier alone: scripts/test.sh -m "not e2e"
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

APT_PACKAGES=(apache2-utils gettext-base postgresql coturn tmux)

# ---------------------------------------------------------------------------- privileges
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
    CAN_APT=1
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo)
    CAN_APT=1
else
    SUDO=()
    CAN_APT=0
fi

apt_install() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

all_installed() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || return 1
    done
}

# ---------------------------------------------------------------------------- 1. system packages
TOOLS_INSTALLED=0
if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not found: not a Debian machine, skipping system packages (${APT_PACKAGES[*]})"
elif [ "$CAN_APT" -ne 1 ]; then
    log "not root and no password-less sudo: skipping apt-get install ${APT_PACKAGES[*]}"
    log "tests needing those tools will be skipped"
elif [ "${WIZARD_FORCE_APT:-0}" != 1 ] && all_installed "${APT_PACKAGES[@]}"; then
    log "system packages already installed: ${APT_PACKAGES[*]}"
    TOOLS_INSTALLED=1
else
    log "installing system packages: ${APT_PACKAGES[*]}"
    apt_install "${APT_PACKAGES[@]}"
    TOOLS_INSTALLED=1
fi

# ---------------------------------------------------------------------------- 2. python
externally_managed() {
    "$1" - <<'PYEOF'
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)
PYEOF
}

if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    PY="$VIRTUAL_ENV/bin/python"
    log "using the active venv: $VIRTUAL_ENV"
else
    if ! command -v python3 >/dev/null 2>&1; then
        if [ "$CAN_APT" -eq 1 ]; then
            apt_install python3 python3-venv python3-pip
        else
            log "python3 not found and cannot install it"; exit 1
        fi
    fi
    PY="$(command -v python3)"
    if externally_managed "$PY"; then
        VENV="${WIZARD_VENV:-.venv}"
        if [ ! -x "$VENV/bin/python" ]; then
            log "$PY is externally managed (PEP 668): creating venv $VENV"
            if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
                if [ "$CAN_APT" -eq 1 ]; then
                    pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
                    apt_install python3-venv "python${pyver}-venv" || apt_install python3-venv
                else
                    log "python3 venv support missing and cannot install python3-venv"; exit 1
                fi
            fi
            "$PY" -m venv "$VENV"
        fi
        PY="$VENV/bin/python"
    fi
    log "using $PY"
fi

if ! "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m ensurepip --upgrade || { [ "$CAN_APT" -eq 1 ] && apt_install python3-pip; }
fi

log "pip install -e '.[test]'"
PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install -e '.[test]'

# ---------------------------------------------------------------------------- 3. pytest
# When the tools were installed, a fixture that cannot find one must fail, not skip.
if [ "$TOOLS_INSTALLED" -eq 1 ]; then
    export WIZARD_TESTS_REQUIRE_TOOLS="${WIZARD_TESTS_REQUIRE_TOOLS:-1}"
fi

set +e
"$PY" -m pytest -q -n "${WIZARD_TEST_WORKERS:-auto}" --dist loadscope "$@"
rc=$?
set -e

if [ "$rc" -eq 5 ]; then
    log "pytest collected no tests: that is a failure"
fi
exit "$rc"
