# shellcheck shell=bash
# Shared set-up steps for scripts/run and scripts/test: find Odoo, build the
# virtualenv, reach (or start) PostgreSQL.  Sourced, never executed.
#
# Environment (all optional):
#   ODOO_SRC          an Odoo 18 source tree (holds odoo-bin); default: the cache folder below
#   CRM_AI_CACHE      cache folder, default ~/.cache/crm_ai (Odoo tree, venv, PostgreSQL cluster)
#   CRM_AI_VENV       virtualenv, default $CRM_AI_CACHE/venv
#   PGHOST, PGPORT, PGUSER, PGPASSWORD   an existing PostgreSQL server to use instead of
#                     the private cluster (the role must be allowed to create databases)

set -euo pipefail

CRM_AI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CRM_AI_CACHE="${CRM_AI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crm_ai}"
CRM_AI_VENV="${CRM_AI_VENV:-$CRM_AI_CACHE/venv}"
CRM_AI_PYTHON="${CRM_AI_PYTHON:-python3}"
ODOO_CACHE_DIR="$CRM_AI_CACHE/odoo-18.0"
ODOO_UPSTREAM_TARBALL="https://github.com/odoo/odoo/archive/refs/heads/18.0.tar.gz"

log() { printf '\033[1m[crm_ai]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[crm_ai] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

is_odoo18_tree() {
    [ -f "$1/odoo-bin" ] && [ -f "$1/odoo/release.py" ] \
        && grep -qE "^version_info = \(18, 0" "$1/odoo/release.py"
}

# find_odoo [download]: sets ODOO_SRC, or returns 1 when there is none (and
# "download" was not asked for).
find_odoo() {
    local want_download="${1:-}"
    if [ -n "${ODOO_SRC:-}" ]; then
        is_odoo18_tree "$ODOO_SRC" || die "ODOO_SRC=$ODOO_SRC is not an Odoo 18 source tree (no odoo-bin / release 18.0)."
    elif is_odoo18_tree "$ODOO_CACHE_DIR"; then
        ODOO_SRC="$ODOO_CACHE_DIR"
    elif [ "$want_download" = download ]; then
        log "No Odoo 18 source found: downloading upstream Odoo 18.0 into $ODOO_CACHE_DIR"
        mkdir -p "$ODOO_CACHE_DIR.part"
        curl -fL --retry 3 "$ODOO_UPSTREAM_TARBALL" | tar -xz --strip-components=1 -C "$ODOO_CACHE_DIR.part" \
            || die "could not download Odoo 18.0; set ODOO_SRC to an Odoo 18 source tree."
        rm -rf "$ODOO_CACHE_DIR" && mv "$ODOO_CACHE_DIR.part" "$ODOO_CACHE_DIR"
        ODOO_SRC="$ODOO_CACHE_DIR"
    else
        return 1
    fi
    ODOO_SRC="$(cd "$ODOO_SRC" && pwd)"
    ODOO_ADDONS_PATH="$ODOO_SRC/addons,$ODOO_SRC/odoo/addons,$CRM_AI_ROOT"
    export ODOO_SRC ODOO_ADDONS_PATH
}

_sha() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# ensure_venv [odoo]: the virtualenv with the ML libraries and test tools, plus
# Odoo's own requirements when "odoo" is given (ODOO_SRC must be set then).
# Rebuilt only when one of the requirement files changed (a stamp holds their hash).
ensure_venv() {
    local with_odoo="${1:-}" stamp ml_hash odoo_hash="" stamp_ml="" stamp_odoo=""
    ml_hash="$(_sha "$CRM_AI_ROOT/requirements.txt" "$CRM_AI_ROOT/requirements-test.txt")"
    [ "$with_odoo" = odoo ] && odoo_hash="$(_sha "$ODOO_SRC/requirements.txt" "$CRM_AI_ROOT/requirements-odoo.txt")"
    stamp="$CRM_AI_VENV/.crm_ai-stamp"
    # The stamp holds "<ml hash> <odoo hash>"; a venv built with Odoo also serves the ml tier.
    if [ -f "$stamp" ] && read -r stamp_ml stamp_odoo <"$stamp" && [ "$stamp_ml" = "$ml_hash" ] \
        && { [ -z "$odoo_hash" ] || [ "$stamp_odoo" = "$odoo_hash" ]; }; then
        [ -n "$odoo_hash" ] && _add_venv_addons
        return 0
    fi
    log "Building the virtualenv $CRM_AI_VENV (a few minutes the first time)"
    [ -x "$CRM_AI_VENV/bin/python" ] || "$CRM_AI_PYTHON" -m venv "$CRM_AI_VENV"
    local pip=("$CRM_AI_VENV/bin/python" -m pip --disable-pip-version-check -q)
    # pip <= 25.2 still has --no-use-pep517, which lightfm 1.17's sdist needs.
    "${pip[@]}" install 'pip>=23,<=25.2' 'setuptools<81' wheel
    # Old sdists (cbor2 5.4, lightfm) import pkg_resources, gone from setuptools 81:
    # the constraint also reaches pip's isolated build environments.
    echo 'setuptools<81' >"$CRM_AI_VENV/build-constraints.txt"
    export PIP_CONSTRAINT="$CRM_AI_VENV/build-constraints.txt"
    local constraints=()
    if [ -n "$odoo_hash" ]; then
        # python-ldap only serves auth_ldap and needs libldap headers to build: leave it out.
        grep -viE '^python-ldap' "$ODOO_SRC/requirements.txt" >"$CRM_AI_VENV/odoo-requirements.txt"
        "${pip[@]}" install -r "$CRM_AI_VENV/odoo-requirements.txt"
        constraints=(-c "$CRM_AI_VENV/odoo-requirements.txt")
        # OCA addons (queue_job) and pins (requirements-odoo.txt), without their
        # dependencies, which are Odoo itself (from ODOO_SRC) and Odoo's own requirements.
        "${pip[@]}" install --no-deps -r "$CRM_AI_ROOT/requirements-odoo.txt"
    fi
    grep -v '^lightfm' "$CRM_AI_ROOT/requirements.txt" >"$CRM_AI_VENV/ml-requirements.txt"
    "${pip[@]}" install "${constraints[@]}" -r "$CRM_AI_VENV/ml-requirements.txt" -r "$CRM_AI_ROOT/requirements-test.txt"
    if ! "$CRM_AI_VENV/bin/python" -c 'import lightfm' 2>/dev/null; then
        # lightfm 1.17's setup.py breaks under PEP 517 isolation (__LIGHTFM_SETUP__ bug).
        "${pip[@]}" install "${constraints[@]}" --no-build-isolation --no-use-pep517 \
            "$(grep '^lightfm' "$CRM_AI_ROOT/requirements.txt")"
    fi
    unset PIP_CONSTRAINT
    "$CRM_AI_VENV/bin/python" -c 'import sklearn, pandas, joblib, textblob, vaderSentiment, py3langid, lightfm, pytest' \
        || die "the virtualenv misses an ML library"
    echo "$ml_hash $odoo_hash" >"$stamp"
    [ -n "$odoo_hash" ] && _add_venv_addons
    return 0
}

# _add_venv_addons: the venv's addons folder (OCA wheels install odoo/addons/<name> there)
# goes on the addons path, after Odoo's own and crm_ai's.
_add_venv_addons() {
    local site
    site="$("$CRM_AI_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    [ -f "$site/odoo/addons/queue_job/__manifest__.py" ] || die "queue_job is missing from $site/odoo/addons"
    case ",$ODOO_ADDONS_PATH," in *",$site/odoo/addons,"*) ;; *) ODOO_ADDONS_PATH="$ODOO_ADDONS_PATH,$site/odoo/addons" ;; esac
    export ODOO_ADDONS_PATH
}

# ensure_postgres: export PGHOST/PGPORT/PGUSER for a server where PGUSER may create
# databases.  An existing server reachable with the caller's PG* variables wins;
# otherwise a private cluster is started from the system's PostgreSQL binaries.
ensure_postgres() {
    if [ -n "${PGHOST:-}${PGPORT:-}${PGUSER:-}" ] && psql -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        log "Using the PostgreSQL server from PG* variables (${PGHOST:-socket}:${PGPORT:-5432}, role ${PGUSER:-$(id -un)})"
        export PGUSER="${PGUSER:-$(id -un)}"
        return 0
    fi
    local private="${CRM_AI_PGROOT:-/var/tmp/crm_ai-postgres}"
    [ "$(id -u)" = 0 ] || private="${CRM_AI_PGROOT:-$CRM_AI_CACHE/postgres}"
    if [ -n "${PGHOST:-}${PGPORT:-}${PGUSER:-}" ] && [ "${PGHOST:-}" != "$private" ]; then
        # said out loud: databases made now are not on the server those variables name
        log "WARNING: the PostgreSQL server named by PG* (${PGHOST:-socket}:${PGPORT:-5432}, role ${PGUSER:-$(id -un)})" \
            "does not answer: using crm_ai's private cluster in $private instead"
    fi
    local bindir
    bindir="$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")"
    [ -x "$bindir/initdb" ] || die "no PostgreSQL found: install the server (Debian: postgresql) or set PGHOST/PGPORT/PGUSER."
    local as=() pgroot="$private"
    if [ "$(id -u)" = 0 ]; then
        # PostgreSQL refuses to run as root: the cluster belongs to the postgres OS user,
        # in a folder it can reach (root's home usually is not).
        id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
        as=(runuser -u postgres --)
    fi
    export PGHOST="$pgroot" PGPORT="${CRM_AI_PGPORT:-54329}" PGUSER=odoo
    unset PGPASSWORD PGDATABASE
    mkdir -p "$pgroot"
    [ ${#as[@]} -gt 0 ] && chown postgres: "$pgroot"
    if [ ! -f "$pgroot/data/PG_VERSION" ]; then
        log "Creating a private PostgreSQL cluster in $pgroot/data"
        "${as[@]}" "$bindir/initdb" -D "$pgroot/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! "${as[@]}" "$bindir/pg_ctl" -D "$pgroot/data" status >/dev/null 2>&1; then
        log "Starting PostgreSQL on port $PGPORT (socket in $pgroot; loopback only)"
        "${as[@]}" "$bindir/pg_ctl" -D "$pgroot/data" -l "$pgroot/postgres.log" -w -t 60 start \
            -o "-k $pgroot -p $PGPORT -c listen_addresses=127.0.0.1 -c synchronous_commit=off" >/dev/null \
            || die "PostgreSQL did not start; see $pgroot/postgres.log"
    fi
    # Odoo refuses the postgres role: work as a dedicated superuser role.
    psql -U postgres -d postgres -Atqc "select 1 from pg_roles where rolname = 'odoo'" | grep -q 1 \
        || psql -U postgres -d postgres -qc "create role odoo login superuser" >/dev/null
    CRM_AI_PG_STOP="${as[*]} $bindir/pg_ctl -D $pgroot/data stop"
    export CRM_AI_PG_STOP
}

# odoo_bin [shell] ARGS...: run Odoo from ODOO_SRC in the venv against the PG* server.
odoo_bin() {
    local sub=()
    if [ "${1:-}" = shell ]; then sub=(shell --no-http); shift; fi
    "$CRM_AI_VENV/bin/python" "$ODOO_SRC/odoo-bin" "${sub[@]}" \
        --addons-path="$ODOO_ADDONS_PATH" \
        --db_host="${PGHOST:-}" --db_port="${PGPORT:-5432}" --db_user="${PGUSER}" \
        ${PGPASSWORD:+--db_password="$PGPASSWORD"} \
        "$@"
}
