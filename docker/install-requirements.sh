#!/bin/sh
# Installs requirements.txt into the image's virtual environment (Dockerfile).
#
#   TORCH_INDEX_URL=<index> docker/install-requirements.sh requirements.txt
#
# With TORCH_INDEX_URL empty, this is exactly `pip install -r requirements.txt`.
#
# With TORCH_INDEX_URL set (the PyTorch wheel index of one build, for example
# https://download.pytorch.org/whl/cu128 for CUDA 12.8 or .../whl/cpu), torch is
# installed first from that index alone, with the version requirements.txt pins
# (its `torch...` line; a plain `torch` if it names none). Then requirements.txt
# is installed as usual from PyPI: pip sees torch already satisfied (a
# `torch==X.Y.Z` pin matches the local build X.Y.Z+cu128) and keeps it. So
# requirements.txt means the same in CI and in every image; only which build of
# the pinned torch gets installed differs.
set -eu

requirements="${1:-requirements.txt}"
index="${TORCH_INDEX_URL:-}"

if [ -n "$index" ]; then
    # The first torch requirement line: "torch", "torch==2.13.0", "torch>=2 ; marker".
    # Not torchvision/torchaudio; comments and surrounding blanks removed.
    torch_spec="$(sed -e 's/[[:space:]]#.*$//' -e 's/^#.*$//' "$requirements" \
        | grep -iE '^[[:space:]]*torch([[:space:]]*([=<>!~;[]|$))' \
        | head -n 1 \
        | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' || true)"
    torch_spec="${torch_spec:-torch}"
    echo "install-requirements: $torch_spec from $index" >&2
    pip install --index-url "$index" "$torch_spec"
fi

pip install -r "$requirements"
