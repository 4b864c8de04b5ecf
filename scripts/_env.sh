# shellcheck shell=bash
# Environment bootstrap shared by ./scripts/test and ./scripts/demo.
#
# Finds a suitable Python, and (re)creates .venv when it is missing or stale.
# "Stale" means the key written after the last successful install differs from
# the key of the dependency files now: requirements/test.txt, pyproject.toml,
# client/pyproject.toml and the interpreter's version. A run with a fresh key
# touches no network at all. (requirements/ha-latest.txt is the newest Home
# Assistant lane's: scripts/_ha_latest.sh.)
#
# Source this file; it defines ROOT, VENV, PY (the venv's python),
# ensure_env, ensure_schemathesis and ensure_chromium.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
KEY_FILE="$VENV/.transactiva-env-key"

# Minimum interpreter: Home Assistant 2025.4 needs 3.13; 3.14 is fine too.
_MIN_MINOR=13

_log() { printf '==> %s\n' "$*" >&2; }

_python_ok() {
    "$1" -c "import sys; sys.exit(0 if sys.version_info[:2] >= (3, $_MIN_MINOR) else 1)" \
        >/dev/null 2>&1
}

# Prints the path of the first suitable interpreter: $TRANSACTIVA_PYTHON if set,
# then python3.13, python3.14 on PATH, then pyenv's installs, then python3.
find_python() {
    local candidates=()
    if [[ -n "${TRANSACTIVA_PYTHON:-}" ]]; then
        if _python_ok "$TRANSACTIVA_PYTHON"; then
            printf '%s\n' "$TRANSACTIVA_PYTHON"
            return 0
        fi
        _log "TRANSACTIVA_PYTHON=$TRANSACTIVA_PYTHON is not Python >= 3.$_MIN_MINOR"
        return 1
    fi
    local name path
    for name in python3.13 python3.14; do
        path="$(command -v "$name" 2>/dev/null || true)"
        [[ -n "$path" ]] && candidates+=("$path")
    done
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    local dir minor
    # 3.13 first (what the pinned Home Assistant supports), newest patch first.
    for minor in 13 14; do
        for dir in $(ls -d "$pyenv_root/versions/3.$minor."* 2>/dev/null | sort -V -r); do
            candidates+=("$dir/bin/python3")
        done
    done
    path="$(command -v python3 2>/dev/null || true)"
    [[ -n "$path" ]] && candidates+=("$path")
    for path in "${candidates[@]}"; do
        # pyenv shims exist for versions that are not selected; running them fails.
        if [[ -x "$path" ]] && _python_ok "$path"; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    _log "no Python >= 3.$_MIN_MINOR found (tried: ${candidates[*]:-nothing})."
    _log "Install Python 3.13 (for example with pyenv) or set TRANSACTIVA_PYTHON."
    return 1
}

_env_key() {
    local python="$1" file
    {
        "$python" -c 'import sys; print(sys.version)'
        cat "$ROOT/pyproject.toml" "$ROOT/client/pyproject.toml" "$ROOT/requirements/test.txt"
    } | sha256sum | cut -d' ' -f1
}

# pip prints a warning for every configured local index that lacks a package;
# keep the log readable without hiding real errors.
_quiet_pip() {
    local status
    "$@" 2>&1 | { grep -v -E "^WARNING: Location '.*' is ignored" || true; }
    status="${PIPESTATUS[0]}"
    return "$status"
}

ensure_env() {
    local python key
    python="$(find_python)" || return 1
    key="$(_env_key "$python")"
    if [[ -x "$VENV/bin/python" && -f "$KEY_FILE" && "$(cat "$KEY_FILE")" == "$key" ]]; then
        PY="$VENV/bin/python"
        return 0
    fi
    if [[ -d "$VENV" ]]; then
        _log "dependency files changed: recreating .venv"
        rm -rf "$VENV"
    else
        _log "creating .venv with $python ($("$python" -c 'import platform; print(platform.python_version())'))"
    fi
    "$python" -m venv "$VENV"
    PY="$VENV/bin/python"
    _log "installing pinned dependencies (requirements/test.txt); the first time takes a few minutes"
    _quiet_pip "$PY" -m pip install --disable-pip-version-check --quiet \
        -r "$ROOT/requirements/test.txt" || { _log "dependency install failed"; return 1; }
    # The wire contract first: the project requires it (exactly), and it is built from
    # client/ here, not fetched.
    _log "installing transactiva-client and transactiva (editable)"
    _quiet_pip "$PY" -m pip install --disable-pip-version-check --quiet \
        --no-deps --no-build-isolation -e "$ROOT/client" || { _log "client install failed"; return 1; }
    _quiet_pip "$PY" -m pip install --disable-pip-version-check --quiet \
        --no-deps --no-build-isolation -e "$ROOT" || { _log "project install failed"; return 1; }
    "$PY" -m pip check >/dev/null || { _log "pip check failed:"; "$PY" -m pip check; return 1; }
    printf '%s\n' "$key" >"$KEY_FILE"
    _log "environment ready"
}

# Schemathesis in an environment of its own, .venv-schemathesis, from
# requirements/schemathesis.txt (requirements/schemathesis.in says why it is not in
# .venv). It runs as a command against a node process, so it needs nothing of the
# project. Rebuilt when the pins or the interpreter change; prints the command's path.
SCHEMATHESIS_VENV="$ROOT/.venv-schemathesis"

ensure_schemathesis() {
    local python key key_file="$SCHEMATHESIS_VENV/.transactiva-env-key"
    python="$(find_python)" || return 1
    key="$({
        "$python" -c 'import sys; print(sys.version)'
        cat "$ROOT/requirements/schemathesis.txt"
    } | sha256sum | cut -d' ' -f1)"
    if [[ ! -x "$SCHEMATHESIS_VENV/bin/schemathesis" || ! -f "$key_file" \
        || "$(cat "$key_file")" != "$key" ]]; then
        _log "installing schemathesis (requirements/schemathesis.txt) in .venv-schemathesis"
        rm -rf "$SCHEMATHESIS_VENV"
        "$python" -m venv "$SCHEMATHESIS_VENV"
        _quiet_pip "$SCHEMATHESIS_VENV/bin/python" -m pip install --disable-pip-version-check \
            --quiet -r "$ROOT/requirements/schemathesis.txt" \
            || { _log "schemathesis install failed"; return 1; }
        printf '%s\n' "$key" >"$key_file"
    fi
    printf '%s\n' "$SCHEMATHESIS_VENV/bin/schemathesis"
}

# Debian's Chromium, which the browser tests of the web interface drive with
# Playwright (tests/web/test_browser.py). Installed with apt-get when it is
# missing and we are root; otherwise this says how to install it, and the
# browser tests fail with the same advice (they are never skipped).
CHROMIUM="${TRANSACTIVA_CHROMIUM:-/usr/bin/chromium}"

ensure_chromium() {
    [[ -x "$CHROMIUM" ]] && return 0
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        _log "Chromium is missing ($CHROMIUM): install Debian's package (apt-get install chromium)"
        _log "or set TRANSACTIVA_CHROMIUM; the browser tests fail without it"
        return 1
    fi
    _log "installing Debian's Chromium for the browser tests"
    if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        || ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
        _log "could not install Chromium with apt-get; the browser tests will fail"
        return 1
    fi
    [[ -x "$CHROMIUM" ]]
}
