#!/usr/bin/env bash
# Build the ptort-lab-renderers JupyterLab extension into a wheel and install it into the project's venv, and bundle
# the explorer widget's view (the same TypeScript) into ptort_lab/notebook/static/explorer.{js,css} for anywidget.
#
#   extensions/build.sh              build (if the sources changed) and install; fails loudly on any error
#   extensions/build.sh --if-node    the same, but exit 0 with a notice when Node.js is missing or too old
#   extensions/build.sh --force      rebuild even if nothing changed
#
# Environment: PYTHON (default: .venv/bin/python of this checkout), DIST (default: dist/ of this checkout).
# Idempotent: a stamp (sha256 of the sources, package.json, yarn.lock, pyproject.toml) skips the build when the
# same wheel is already installed. Node is needed here only; the wheel installs without it.
# npm packages come from the committed yarn.lock (`jlpm install --immutable`: a lock that is out of date fails).
# The explorer bundle is committed, so a machine without Node still has a working explorer (--if-node keeps it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXT="$ROOT/extensions/ptort-lab-renderers"
PY=${PYTHON:-$ROOT/.venv/bin/python}
DIST=${DIST:-$ROOT/dist}
IF_NODE=0
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --if-node) IF_NODE=1 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

say() { echo "[extensions/build.sh] $*"; }
t0=$(date +%s)

# -- Node.js: @rspack/core (the bundler) needs ^20.19.0 || >=22.12.0 ------------------------------------------------
node_ok() {
    command -v node >/dev/null 2>&1 || return 1
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit((a===20&&b>=19)||(a===22&&b>=12)||a>=23?0:1)'
}
if ! node_ok; then
    msg="Node.js ^20.19 or >=22.12 is needed to build the extension (found: $(node --version 2>/dev/null || echo none))."
    if [ "$IF_NODE" = 1 ]; then
        say "$msg Skipping; ptort_lab works without it (stock PNG/SVG outputs, and the committed explorer bundle)."
        exit 0
    fi
    say "$msg Install it (Debian: apt-get install nodejs) or run with --if-node." >&2
    exit 3
fi

test -x "$PY" || { say "no Python at $PY (run 'make venv' first, or set PYTHON)" >&2; exit 2; }
VENV_BIN=$(dirname "$PY")

# -- JupyterLab in the venv: it runs the extension, and brings jlpm (yarn) for the build -----------------------------
if ! "$PY" -c 'import jupyterlab' >/dev/null 2>&1; then
    say "installing jupyterlab into $(dirname "$VENV_BIN")"
    "$PY" -m pip install --quiet 'jupyterlab>=4,<5'
fi
JLPM="$VENV_BIN/jlpm"
test -x "$JLPM" || { say "jlpm not found next to $PY" >&2; exit 2; }

# -- Up to date? ----------------------------------------------------------------------------------------------------
stamp_of() {
    # The shared palette lives in the Python package; the build copies it into src/logic (scripts/sync-palette.mjs).
    (cd "$EXT" && find src style scripts ptort_lab_renderers/__init__.py package.json yarn.lock .yarnrc.yml \
        tsconfig.json pyproject.toml install.json ../../ptort_lab/viz/palette.json -type f -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}
STAMP=$(stamp_of)
STAMP_FILE="$(dirname "$VENV_BIN")/.ptort-lab-renderers.stamp"
INSTALLED="$(dirname "$VENV_BIN")/share/jupyter/labextensions/ptort-lab-renderers/package.json"
EXPLORER="$ROOT/ptort_lab/notebook/static/explorer.js"
if [ "$FORCE" = 0 ] && [ -f "$INSTALLED" ] && [ -f "$EXPLORER" ] && [ "$(cat "$STAMP_FILE" 2>/dev/null)" = "$STAMP" ]; then
    say "up to date (stamp $STAMP); nothing to do"
    exit 0
fi

# -- npm packages from the lock, then the wheel ---------------------------------------------------------------------
cd "$EXT"
export PATH="$VENV_BIN:$PATH"        # jlpm and jupyter-builder for the npm scripts
export YARN_ENABLE_TELEMETRY=0 YARN_ENABLE_PROGRESS_BARS=0
say "jlpm install --immutable"
"$JLPM" install --immutable
rm -rf ptort_lab_renderers/labextension lib tsconfig.tsbuildinfo   # the build hook skips when this exists
say "bundling the explorer view into ptort_lab/notebook/static"
"$JLPM" build:lib:prod
node scripts/build-explorer.mjs
rm -rf lib tsconfig.tsbuildinfo
mkdir -p "$DIST"
rm -f "$DIST"/ptort_lab_renderers-*.whl
say "building the wheel into $DIST"
"$PY" -m pip wheel --quiet --no-deps "$EXT" -w "$DIST"
WHEEL=$(ls "$DIST"/ptort_lab_renderers-*.whl)
say "installing $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
"$PY" -m pip install --quiet --no-deps --force-reinstall "$WHEEL"
test -f "$INSTALLED" || { say "the wheel did not install share/jupyter/labextensions/ptort-lab-renderers" >&2; exit 1; }
echo "$STAMP" > "$STAMP_FILE"
say "done in $(( $(date +%s) - t0 )) s"
