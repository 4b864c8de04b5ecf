# shellcheck shell=bash
# The newest Home Assistant lane: tests/ha on the newest Home Assistant that its
# test harness pins (requirements/ha-latest.in), in an environment of its own.
#
# That Home Assistant needs Python >= 3.14.2. When this machine has one
# ($TRANSACTIVA_LATEST_PYTHON, python3.14 on PATH, pyenv's 3.14.*), the lane's
# venv is made with it in .cache/ha-latest/venv. Otherwise, as root on a Debian
# machine, a Debian root is built with debootstrap (sid, from the mirror apt
# already uses), Debian's python3.14 is installed in it, and the venv lives
# inside it (/opt/transactiva-venv). Commands run there through chroot, in a
# private mount namespace holding the only mounts: the repository bound at its
# own path, a fresh /tmp and /dev/shm, and /proc while tests run. The host's
# /dev is never bound (the root has its own device nodes, made by debootstrap
# with mknod), and every mount disappears with the namespace, whatever happens.
#
# Both are cached under .cache/ha-latest and rebuilt only when their inputs
# change: the root when its recipe changes (the functions below, the mirror),
# the venv when requirements/ha-latest.txt, pyproject.toml, client/pyproject.toml,
# the interpreter or the repository's path change.
#
# Source after scripts/_env.sh; it defines ensure_ha_latest, ha_latest_run,
# ha_latest_python_run and ha_latest_test.

LATEST_CACHE="$ROOT/.cache/ha-latest"
LATEST_ROOTFS="$LATEST_CACHE/root"
LATEST_ROOTFS_KEY="$LATEST_CACHE/root.key"
LATEST_HOST_VENV="$LATEST_CACHE/venv"
# The venv's path inside the Debian root.
LATEST_ROOT_VENV="/opt/transactiva-venv"
LATEST_SUITE="sid"
LATEST_PACKAGES=(python3.14 python3.14-venv)
LATEST_MIN_PYTHON="3.14.2"
# Variables passed into the root (everything else is dropped: the host's pip
# settings name local paths that do not exist there).
LATEST_PASS_ENV=(PYTHONHASHSEED HYPOTHESIS_PROFILE TZ http_proxy https_proxy no_proxy
    HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL PIP_DEFAULT_TIMEOUT)

# Set by ensure_ha_latest: "host" or "root", and the lane's python (a path on the
# host, or inside the root).
LATEST_MODE=""
LATEST_PY=""
# The root that commands run in (a fresh one while it is being built).
LATEST_ROOTFS_BUILD="$LATEST_ROOTFS"

# -- the interpreter -------------------------------------------------------------

_latest_python_ok() {
    "$1" -c "import sys; sys.exit(0 if sys.version_info[:3] >= (3, 14, 2) else 1)" \
        >/dev/null 2>&1
}

# A Python >= 3.14.2 on this machine: $TRANSACTIVA_LATEST_PYTHON if set (an error if
# it is not one), then python3.14 on PATH, then pyenv's 3.14.* (newest first).
_latest_host_python() {
    if [[ -n "${TRANSACTIVA_LATEST_PYTHON:-}" ]]; then
        if _latest_python_ok "$TRANSACTIVA_LATEST_PYTHON"; then
            printf '%s\n' "$TRANSACTIVA_LATEST_PYTHON"
            return 0
        fi
        _log "TRANSACTIVA_LATEST_PYTHON=$TRANSACTIVA_LATEST_PYTHON is not Python >= $LATEST_MIN_PYTHON"
        return 2
    fi
    local candidates=() path dir
    path="$(command -v python3.14 2>/dev/null || true)"
    [[ -n "$path" ]] && candidates+=("$path")
    for dir in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/3.14."* 2>/dev/null | sort -V -r); do
        candidates+=("$dir/bin/python3")
    done
    for path in "${candidates[@]}"; do
        if [[ -x "$path" ]] && _latest_python_ok "$path"; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    return 1
}

# -- the Debian root ---------------------------------------------------------------

# The Debian mirror apt already uses: the first enabled "deb" source whose suite is
# this machine's release codename (not -updates, not -security), from one-line
# (*.list) and deb822 (*.sources) files under ETC/apt. $TRANSACTIVA_DEBIAN_MIRROR wins.
latest_debian_mirror() {
    local etc="${1:-/etc}"
    if [[ -n "${TRANSACTIVA_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "$TRANSACTIVA_DEBIAN_MIRROR"
        return 0
    fi
    local codename
    codename="$(sed -n -E 's/^VERSION_CODENAME="?([^"]*)"?$/\1/p' "$etc/os-release" 2>/dev/null)"
    [[ -n "$codename" ]] || return 1
    local files=() file
    for file in "$etc/apt/sources.list" "$etc"/apt/sources.list.d/*.list; do
        [[ -f "$file" ]] && files+=("$file")
    done
    if ((${#files[@]})); then
        # deb [options] URI SUITE COMPONENT...
        awk -v suite="$codename" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "${files[@]}" | sed -n 1p | grep . && return 0
    fi
    files=()
    for file in "$etc"/apt/sources.list.d/*.sources; do
        [[ -f "$file" ]] && files+=("$file")
    done
    ((${#files[@]})) || return 1
    # Stanzas separated by blank lines; Types, URIs, Suites, Enabled fields.
    awk -v suite="$codename" '
        function flush() {
            if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " suite " ")) {
                split(uris, u, " "); print u[1]; found = 1; exit
            }
            types = uris = suites = ""; enabled = "yes"
        }
        BEGIN { enabled = "yes" }
        /^#/ { next }
        /^[ \t]*$/ { flush(); next }
        {
            field = tolower($1); sub(/:$/, "", field); $1 = ""; sub(/^ +/, "")
            if (field == "types") types = $0
            else if (field == "uris") uris = $0
            else if (field == "suites") suites = $0
            else if (field == "enabled") enabled = tolower($0)
        }
        END { if (!found) flush() }' "${files[@]}" | sed -n 1p | grep .
}

# The host's apt settings that decide whether the mirror's index is accepted
# (a mirror serving a dated snapshot needs Check-Valid-Until "false"); the root's
# apt uses the same, so it accepts exactly what the host's apt accepts.
_latest_apt_conf() {
    local option value
    for option in Acquire::Check-Valid-Until Acquire::Check-Date; do
        value="$(apt-config dump "$option" 2>/dev/null | sed -n -E "s/^$option \"(.*)\";$/\1/p")"
        [[ -n "$value" ]] && printf '%s "%s";\n' "$option" "$value"
    done
    return 0
}

# What is missing on this machine to build the Debian root (empty: nothing).
_latest_root_missing() {
    local missing=()
    [[ "$(id -u)" -eq 0 ]] || missing+=("root (running as uid $(id -u))")
    local tool
    for tool in apt-get apt-config unshare chroot mount umount; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("the $tool command")
    done
    if ! latest_debian_mirror >/dev/null; then
        missing+=("a Debian mirror in /etc/apt/sources.list{,.d} (or TRANSACTIVA_DEBIAN_MIRROR)")
    fi
    ((${#missing[@]} == 0)) || printf '%s\n' "${missing[@]}"
}

_latest_apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" \
        >/dev/null 2>&1 && return 0
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" \
        >/dev/null
}

# Remove a Debian root (or a half-built one). Refuses while anything is mounted
# beneath it in this namespace or the repository's mount point inside it is not
# empty (a bind still in place in some other namespace): rm would then reach the
# repository itself, which is on the same file system, so --one-file-system alone
# does not protect it.
_latest_remove_root() {
    local rootfs="$1"
    [[ -e "$rootfs" ]] || return 0
    local real
    real="$(realpath "$rootfs")"
    if awk -v root="$real/" '{ if (index($5 "/", root) == 1) found = 1 } END { exit !found }' \
        /proc/self/mountinfo; then
        _log "refusing to remove $rootfs: something is mounted beneath it"
        return 1
    fi
    if [[ -d "$rootfs$ROOT" && -n "$(ls -A "$rootfs$ROOT" 2>/dev/null)" ]]; then
        _log "refusing to remove $rootfs: $rootfs$ROOT is not empty (the repository is bound there)"
        return 1
    fi
    rm -rf --one-file-system "$rootfs"
}

# The key of the root's recipe: the functions that build it, the suite, the
# packages, the mirror and the apt settings taken from the host.
_latest_root_key() {
    {
        declare -f _latest_build_root _latest_enter
        printf '%s\n' "$LATEST_SUITE" "${LATEST_PACKAGES[*]}" "$(latest_debian_mirror)"
        _latest_apt_conf
    } | sha256sum | cut -d' ' -f1
}

# Copy the host's resolver configuration and certificate bundle into the root (the
# registries are reached through that bundle). Destinations are removed first so a
# symbolic link inside the root is never followed out of it.
_latest_enter() {
    local rootfs="$1"
    rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    mkdir -p "$rootfs/etc/ssl/certs"
    cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf"
    cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
}

_latest_build_root() {
    local rootfs="$1" mirror="$2" log="$3"
    if ! command -v debootstrap >/dev/null 2>&1; then
        _log "installing Debian's debootstrap"
        _latest_apt_install debootstrap debian-archive-keyring \
            || { _log "could not install debootstrap with apt-get"; return 1; }
    fi
    _log "debootstrap --variant=minbase $LATEST_SUITE $rootfs $mirror (log: $log)"
    # Its own private mount namespace: whatever debootstrap mounts in the root
    # (/proc, /sys, /dev/pts) is gone when it ends, even if it is killed.
    unshare --mount --propagation private -- \
        debootstrap --variant=minbase "$LATEST_SUITE" "$rootfs" "$mirror" >"$log" 2>&1 \
        || { _log "debootstrap failed:"; tail -n 20 "$log" >&2; return 1; }
    _latest_apt_conf >"$rootfs/etc/apt/apt.conf.d/99transactiva-host"
    _log "installing ${LATEST_PACKAGES[*]} in the root"
    _latest_in_root 0 /bin/sh -c \
        'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" \
            && apt-get clean' _ "${LATEST_PACKAGES[@]}" >>"$log" 2>&1 \
        || { _log "apt-get in the root failed:"; tail -n 20 "$log" >&2; return 1; }
}

# Runs inside a private mount namespace (see _latest_in_root): bind the repository
# at its own path, mount a fresh /tmp and /dev/shm (and /proc when asked), run the
# command in the root, and unmount everything on the way out.
_latest_namespace() {
    local rootfs="$1" repo="$2" with_proc="$3" nenv="$4"
    shift 4
    local env_args=("${@:1:$nenv}")
    shift "$nenv"
    local mounted=() status=0
    _latest_unmount() {
        local i
        for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
            umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}"
        done
        mounted=()
    }
    trap _latest_unmount EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$rootfs$repo" "$rootfs/tmp" "$rootfs/dev/shm" "$rootfs/proc"
    mount --bind "$repo" "$rootfs$repo" && mounted+=("$rootfs$repo") || return 1
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$rootfs/tmp" && mounted+=("$rootfs/tmp") \
        || return 1
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$rootfs/dev/shm" \
        && mounted+=("$rootfs/dev/shm") || return 1
    if [[ "$with_proc" == 1 ]]; then
        mount -t proc -o nosuid,nodev,noexec proc "$rootfs/proc" && mounted+=("$rootfs/proc") \
            || return 1
    fi
    chroot "$rootfs" /usr/bin/env -i -C "$repo" "${env_args[@]}" "$@" || status=$?
    _latest_unmount
    return "$status"
}

# _latest_in_root WITH_PROC CMD...: run CMD in the root, in the repository's
# directory, with a clean environment.
_latest_in_root() {
    local with_proc="$1"
    shift
    _latest_enter "$LATEST_ROOTFS_BUILD"
    local env_args=(
        HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive
        "PATH=$LATEST_ROOT_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt
        REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
        PIP_DISABLE_PIP_VERSION_CHECK=1
    )
    local name
    for name in "${LATEST_PASS_ENV[@]}"; do
        [[ -n "${!name:-}" ]] && env_args+=("$name=${!name}")
    done
    unshare --mount --propagation private -- bash -c \
        "$(declare -f _latest_namespace); _latest_namespace \"\$@\"" _ \
        "$LATEST_ROOTFS_BUILD" "$ROOT" "$with_proc" "${#env_args[@]}" "${env_args[@]}" "$@"
}

# Build the root when it is missing or its recipe changed; fail saying what is
# missing when it cannot be built here.
_latest_ensure_root() {
    local missing
    missing="$(_latest_root_missing)"
    if [[ -n "$missing" ]]; then
        _log "the newest Home Assistant lane needs Python >= $LATEST_MIN_PYTHON, and this machine"
        _log "has none (set TRANSACTIVA_LATEST_PYTHON to one). Building one in a Debian root needs:"
        while IFS= read -r line; do _log "  missing: $line"; done <<<"$missing"
        return 1
    fi
    local key mirror
    key="$(_latest_root_key)"
    mirror="$(latest_debian_mirror)"
    LATEST_ROOTFS_BUILD="$LATEST_ROOTFS"
    if [[ -x "$LATEST_ROOTFS/usr/bin/python3.14" && -f "$LATEST_ROOTFS_KEY" \
        && "$(cat "$LATEST_ROOTFS_KEY")" == "$key" ]]; then
        return 0
    fi
    mkdir -p "$LATEST_CACHE"
    local fresh="$LATEST_CACHE/root.new"
    _latest_remove_root "$fresh" || return 1
    _log "building a Debian $LATEST_SUITE root for Python >= $LATEST_MIN_PYTHON (a few minutes)"
    LATEST_ROOTFS_BUILD="$fresh"
    if ! _latest_build_root "$fresh" "$mirror" "$LATEST_CACHE/root-build.log"; then
        LATEST_ROOTFS_BUILD="$LATEST_ROOTFS"
        _latest_remove_root "$fresh"
        return 1
    fi
    rm -f "$LATEST_ROOTFS_KEY"
    _latest_remove_root "$LATEST_ROOTFS" || return 1
    mv "$fresh" "$LATEST_ROOTFS"
    LATEST_ROOTFS_BUILD="$LATEST_ROOTFS"
    printf '%s\n' "$key" >"$LATEST_ROOTFS_KEY"
}

# -- the lane's environment ----------------------------------------------------------

# ha_latest_python_run CMD...: run CMD with the lane's interpreter on PATH (host or
# root), in the repository's directory, without /proc in the root.
ha_latest_python_run() {
    if [[ "$LATEST_MODE" == root ]]; then
        _latest_in_root 0 "$@"
    else
        (cd "$ROOT" && "$@")
    fi
}

# ha_latest_run CMD...: run CMD in the lane's environment, as tests run (with /proc
# in the root).
ha_latest_run() {
    if [[ "$LATEST_MODE" == root ]]; then
        _latest_in_root 1 "$@"
    else
        (cd "$ROOT" && PATH="$LATEST_HOST_VENV/bin:$PATH" "$@")
    fi
}

# Find or build the lane's interpreter: sets LATEST_MODE and LATEST_PY.
ensure_ha_latest_python() {
    local python status=0
    python="$(_latest_host_python)" || status=$?
    if [[ $status -eq 0 ]]; then
        LATEST_MODE=host LATEST_PY="$python"
        return 0
    fi
    [[ $status -eq 1 ]] || return 1
    _latest_ensure_root || return 1
    LATEST_MODE=root LATEST_PY=/usr/bin/python3.14
    if ! _latest_in_root 0 "$LATEST_PY" -c \
        "import sys; sys.exit(0 if sys.version_info[:3] >= (3, 14, 2) else 1)"; then
        _log "Debian $LATEST_SUITE's python3.14 is older than $LATEST_MIN_PYTHON"
        return 1
    fi
}

# The lane's venv, (re)built when requirements/ha-latest.txt, pyproject.toml,
# client/pyproject.toml, the interpreter or the repository's path change.
ensure_ha_latest() {
    ensure_ha_latest_python || return 1
    local venv key_file version key
    if [[ "$LATEST_MODE" == root ]]; then
        venv="$LATEST_ROOT_VENV"
        key_file="$LATEST_ROOTFS$LATEST_ROOT_VENV/.transactiva-env-key"
    else
        venv="$LATEST_HOST_VENV"
        key_file="$LATEST_HOST_VENV/.transactiva-env-key"
    fi
    version="$(ha_latest_python_run "$LATEST_PY" -c 'import sys; print(sys.version)')" || return 1
    key="$({
        printf '%s\n%s\n%s\n' "$version" "$ROOT" "$venv"
        cat "$ROOT/pyproject.toml" "$ROOT/client/pyproject.toml" "$ROOT/requirements/ha-latest.txt"
    } | sha256sum | cut -d' ' -f1)"
    if [[ -f "$key_file" && "$(cat "$key_file")" == "$key" ]]; then
        return 0
    fi
    local host_venv="$venv"
    [[ "$LATEST_MODE" == root ]] && host_venv="$LATEST_ROOTFS$LATEST_ROOT_VENV"
    rm -rf --one-file-system "$host_venv"
    _log "creating the newest lane's venv with $LATEST_PY ($LATEST_MODE); installing requirements/ha-latest.txt"
    ha_latest_python_run "$LATEST_PY" -m venv "$venv" || return 1
    _quiet_pip ha_latest_python_run "$venv/bin/python" -m pip install --quiet \
        -r requirements/ha-latest.txt || { _log "dependency install failed"; return 1; }
    # The wire contract first (the project requires it exactly), built from client/.
    _quiet_pip ha_latest_python_run "$venv/bin/python" -m pip install --quiet \
        --no-deps --no-build-isolation -e ./client || { _log "client install failed"; return 1; }
    _quiet_pip ha_latest_python_run "$venv/bin/python" -m pip install --quiet \
        --no-deps --no-build-isolation -e . || { _log "project install failed"; return 1; }
    ha_latest_python_run "$venv/bin/python" -m pip check >/dev/null \
        || { _log "pip check failed"; ha_latest_python_run "$venv/bin/python" -m pip check; return 1; }
    printf '%s\n' "$key" >"$key_file"
    _log "newest lane ready"
}

# ha_latest_test PYTEST_ARGS...: pytest in the newest lane (tests/ha/pytest.ini
# applies to the paths under tests/ha).
ha_latest_test() {
    ensure_ha_latest || return 1
    local python="$LATEST_HOST_VENV/bin/python"
    [[ "$LATEST_MODE" == root ]] && python="$LATEST_ROOT_VENV/bin/python"
    _log "newest lane: $(ha_latest_python_run "$python" -c 'import platform
from homeassistant.const import __version__
print(f"Home Assistant {__version__} on Python {platform.python_version()}")')"
    ha_latest_run "$python" -m pytest "$@"
}
