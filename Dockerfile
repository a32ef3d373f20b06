# syntax=docker/dockerfile:1
#
# The biofm image: one image for the web server and the Celery workers; the
# role is the container's command (docker/entrypoint.sh: web | worker | migrate
# | manage | any command). docker-compose.yml builds it twice: once for web and
# the CPU worker, once for the GPU worker with a CUDA build of torch.
#
# Build arguments
#   TORCH_INDEX_URL   PyTorch wheel index to install torch from, before the rest
#                     of requirements.txt (docker/install-requirements.sh).
#                     Empty (the default): requirements.txt is installed as it is.
#                     https://download.pytorch.org/whl/cpu    CPU-only torch (small)
#                     https://download.pytorch.org/whl/cu128  CUDA 12.8 torch (GPU worker)
#                     The torch version is always the one requirements.txt pins;
#                     the index only picks which build of it. A CUDA build needs
#                     the host's NVIDIA driver and the NVIDIA container toolkit,
#                     not a CUDA base image: the wheels bring the CUDA libraries.
#   PYTHON_VERSION    default 3.11 (the version CI runs)
#   NODE_VERSION      default 22 (only builds node_modules; not in the final image)
#
#   docker build -t biofm:latest .
#   docker build -t biofm-gpu:latest --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .

ARG PYTHON_VERSION=3.11
ARG NODE_VERSION=22

# --- 1. Front-end libraries (htmx, plotly.js) from package-lock.json --------
FROM node:${NODE_VERSION}-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- 2. Python dependencies in a virtual environment -----------------------
FROM python:${PYTHON_VERSION}-slim AS python-deps
ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv && pip install --upgrade pip
COPY requirements.txt docker/install-requirements.sh /tmp/build/
RUN TORCH_INDEX_URL="$TORCH_INDEX_URL" sh /tmp/build/install-requirements.sh /tmp/build/requirements.txt

# --- 3. Runtime ---------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=biofm_site.settings \
    BIOFM_NODE_MODULES=/opt/biofm/node_modules \
    BIOFM_VAR_DIR=/srv/biofm/var \
    BIOFM_MEDIA_ROOT=/srv/biofm/media \
    BIOFM_MANIFEST_STATIC=1 \
    HOME=/home/biofm

# A fixed uid/gid, so that files in the media volume keep one owner across
# rebuilds. /srv/biofm/media and /srv/biofm/models are created here, owned by
# biofm: an empty named volume mounted on one takes that owner on first use.
RUN groupadd --system --gid 10001 biofm \
    && useradd --system --uid 10001 --gid biofm --home-dir /home/biofm --create-home \
        --shell /usr/sbin/nologin biofm \
    && mkdir -p /srv/biofm/var /srv/biofm/media /srv/biofm/models \
    && chown -R biofm:biofm /srv/biofm

COPY --from=python-deps /opt/venv /opt/venv
# Only the folders settings.STATICFILES_DIRS serves, at the same paths under
# BIOFM_NODE_MODULES as under the project's node_modules.
COPY --from=assets /build/node_modules/htmx.org/dist /opt/biofm/node_modules/htmx.org/dist
COPY --from=assets /build/node_modules/plotly.js-dist-min /opt/biofm/node_modules/plotly.js-dist-min
# 3Dmol.js: the minified bundle only (the unminified builds name source maps
# the package does not ship, which the manifest storage refuses).
COPY --from=assets /build/node_modules/3dmol/build/3Dmol-min.js /opt/biofm/node_modules/3dmol/build/

# The code stays owned by root: the app user can read it, not change it.
WORKDIR /app
COPY . /app
RUN chmod 0755 /app/docker/entrypoint.sh

USER biofm
# Fails the build if a vendored file is missing; also leaves a manifest in the
# image, so every role (workers included) can resolve {% static %}. The web
# role collects again at start (cheap), after the code or settings change.
RUN test -f "$BIOFM_NODE_MODULES/htmx.org/dist/htmx.min.js" \
    && test -f "$BIOFM_NODE_MODULES/plotly.js-dist-min/plotly.min.js" \
    && python manage.py collectstatic --noinput --verbosity 0

EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
