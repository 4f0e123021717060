#!/usr/bin/env bash
# A virtual environment with the Jupyter clients the kernel's tests drive (pinned in
# tests/jupyter/requirements.txt) and papermill's Rhai translator (python/papermill-retort),
# at target/jupyter-venv; tests/it/jupyter.rs finds it there. Needs python3 with venv, and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/jupyter-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/jupyter/requirements.txt ./python/papermill-retort
echo "$venv/bin/python"
