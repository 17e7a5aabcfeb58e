#!/usr/bin/env bash
# Install Label Studio 1.23.2 in its own virtual environment, for the end-to-end test.
#
# Label Studio pins ~150 packages (Django, its own label-studio-sdk) that must not leak into
# the project's environment, so it lives in a separate venv (default /work/main/.lsvenv,
# gitignored; override with LS_VENV). Idempotent: an existing, working install is kept.
case "${1:-}" in -h|--help) sed -n "2,6p" "$0" | sed "s/^# \{0,1\}//"; exit 0;; esac
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LS_VENV="${LS_VENV:-$HERE/.lsvenv}"
LS_VERSION="${LS_VERSION:-1.23.2}"
PYTHON="${PYTHON:-python3}"

if [ -x "$LS_VENV/bin/label-studio" ] && \
   "$LS_VENV/bin/python" -c "import label_studio, sys; sys.exit(0 if label_studio.__version__ == '$LS_VERSION' else 1)" 2>/dev/null; then
    echo "Label Studio $LS_VERSION already installed in $LS_VENV"
    exit 0
fi

echo "Installing label-studio==$LS_VERSION into $LS_VENV (about 5 minutes)"
"$PYTHON" -m venv "$LS_VENV"
"$LS_VENV/bin/python" -m pip install --quiet --upgrade pip
"$LS_VENV/bin/python" -m pip install --quiet "label-studio==$LS_VERSION"
LATEST_VERSION_CHECK=false "$LS_VENV/bin/python" -c "import label_studio; print(label_studio.__version__)"
echo "Label Studio $LS_VERSION installed in $LS_VENV"
