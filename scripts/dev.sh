#!/usr/bin/env bash
# One entry point for a fresh machine (Debian, root, Python 3.11, nothing else installed).
#
#   scripts/dev.sh serve        install everything, `hanko init var/dev` once, run the service
#   scripts/dev.sh test [ARGS]  install everything, run ruff, mypy and the whole test suite
#   scripts/dev.sh setup        install everything and stop
#
# Everything a test needs is installed here, never by hand: CI runs on machines that
# have nothing but Python.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
DEV_DIR="${HANKO_DEV_DIR:-$ROOT/var/dev}"

# softhsm2: the HSM the tests and the dev service use; openssl, gnutls-bin, nginx and wrk
# are the interop peers and load generator the tests and benchmarks drive; golang-cfssl
# (`cfssl ocspserve`) is the Go OCSP responder `hanko bench ocsp` compares against;
# systemd gives systemd-analyze, which checks configs/hanko.service; redis-server is the
# status replication's store (tests start their own, on loopback); postgresql is the
# store of record past one host (tests make throwaway clusters with initdb and pg_ctl,
# loopback only).
# chromium and chromium-driver: the tests look at `hanko bench --report` pages in a
# real browser (headless, driven by selenium).
APT_PACKAGES=(softhsm2 openssl gnutls-bin nginx-light wrk curl ca-certificates golang-cfssl certbot lego pebble systemd redis-server postgresql chromium chromium-driver unbound dns-root-data nsd ldnsutils bind9-dnsutils)

log() { printf 'dev.sh: %s\n' "$*" >&2; }

need_apt() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing system packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

pick_python() {
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            echo "$candidate"
            return
        fi
    done
    log "Python 3.11 is required (python3.11 or python3 on PATH)"
    exit 1
}

need_venv() {
    local py
    py=$(pick_python)
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            # Debian's own python3 splits venv into a separate package.
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$py" -m venv "$VENV"
        fi
    fi
    # Exactly what the lock file pins, each distribution checked against its hash
    # (scripts/lock.sh writes it from pyproject.toml), then hanko itself without
    # dependencies. Reinstalled only when the lock or pyproject changed (a stamp).
    local stamp="$VENV/.hanko-installed" want
    want=$(cat requirements-dev.lock pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing Python dependencies from requirements-dev.lock"
        "$VENV/bin/pip" install -q --upgrade pip >/dev/null
        "$VENV/bin/pip" install -q --require-hashes -r requirements-dev.lock
        "$VENV/bin/pip" install -q --no-deps -e .
        echo "$want" >"$stamp"
    fi
}

# Tools the tests run as a user would, each in a virtualenv of its own (their pins
# would fight the project's: sslyze needs an older cryptography). SSLyze checks the API
# listener against Mozilla's TLS profiles.
TOOLS="$VENV/tools"
SSLYZE_VERSION=6.3.1
need_tools() {
    local have=""
    if [ -x "$TOOLS/sslyze/bin/sslyze" ]; then
        have=$("$TOOLS/sslyze/bin/pip" show sslyze 2>/dev/null | sed -n 's/^Version: //p')
    fi
    if [ "$have" != "$SSLYZE_VERSION" ]; then
        log "installing sslyze $SSLYZE_VERSION"
        "$(pick_python)" -m venv "$TOOLS/sslyze"
        "$TOOLS/sslyze/bin/pip" install -q "sslyze==$SSLYZE_VERSION" >/dev/null
    fi
}

# `hanko` on PATH for the README's commands: a link to this checkout's virtualenv.
link_cli() {
    local bin=/usr/local/bin
    if [ -w "$bin" ] && { [ ! -e "$bin/hanko" ] || [ -L "$bin/hanko" ]; }; then
        ln -sfn "$VENV/bin/hanko" "$bin/hanko"
    elif ! command -v hanko >/dev/null 2>&1; then
        log "hanko is not on PATH: use $VENV/bin/hanko (or add $VENV/bin to PATH)"
    fi
}

# The development resolver: Unbound, validating, on 127.0.0.1:5053 (where `hanko init`
# points [dns] resolver), the walkthrough's domain from local data. Started once and
# left running, like a system resolver; its files are under $DEV_DIR/unbound.
RESOLVER_PORT=5053
resolver_answers() {
    dig +time=1 +tries=1 -p "$RESOLVER_PORT" @127.0.0.1 example.co.jp CAA >/dev/null 2>&1
}

need_resolver() {
    local dir="$DEV_DIR/unbound"
    mkdir -p "$dir"
    local want
    want=$(sed "s|@DIR@|$dir|g" scripts/unbound-dev.conf)
    if resolver_answers; then
        # Ours and unchanged, or another checkout's: used as it is. Ours and changed:
        # restarted.
        [ -f "$dir/unbound.pid" ] || return 0
        [ "$want" = "$(cat "$dir/unbound.conf" 2>/dev/null)" ] && return 0
        kill "$(cat "$dir/unbound.pid")" 2>/dev/null || true
        sleep 0.5
    fi
    printf '%s\n' "$want" >"$dir/unbound.conf"
    log "starting the development resolver (Unbound) on 127.0.0.1:$RESOLVER_PORT"
    unbound -c "$dir/unbound.conf"
    for _ in $(seq 50); do
        resolver_answers && return
        sleep 0.1
    done
    log "the development resolver did not start: see $dir/unbound.log"
    exit 1
}

setup() {
    need_apt
    need_venv
    need_tools
    link_cli
}

cmd=${1:-}
shift || true
case "$cmd" in
    setup)
        setup
        ;;
    resolver)
        need_resolver
        ;;
    serve)
        setup
        need_resolver
        if [ ! -f "$DEV_DIR/hanko.toml" ]; then
            log "creating the development CA in $DEV_DIR"
            "$VENV/bin/hanko" init "$DEV_DIR"
        fi
        exec "$VENV/bin/hanko" serve -c "$DEV_DIR/hanko.toml"
        ;;
    test)
        setup
        need_resolver
        "$VENV/bin/ruff" check .
        "$VENV/bin/mypy"
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: scripts/dev.sh {serve|test [pytest args]|setup|resolver}" >&2
        exit 2
        ;;
esac
