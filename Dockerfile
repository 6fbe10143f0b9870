# syntax=docker/dockerfile:1
# One image for every process: `intellizap api` (the default), `intellizap worker`,
# `intellizap migrate`, and the operator commands (`docker compose exec api intellizap usuarios
# list`). See docs/deploy.md.

ARG PYTHON_VERSION=3.11

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# --- build: the locked dependencies and the package, in a virtual environment -----------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

# --- runtime: Python, ffmpeg (voice notes), time zones, the virtual environment ----------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# Debian's security updates are taken on every build, so the packages are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin intellizap \
    && mkdir -p /data \
    && chown intellizap:intellizap /data
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
USER 10001:10001
WORKDIR /home/intellizap
EXPOSE 8000
# Ready = the database answers and is migrated (the worker's container overrides this: it has
# no HTTP API; compose.yaml checks its metrics listener instead).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '8000'), timeout=4)"]
# No ENTRYPOINT: a platform's start command (`intellizap worker`) replaces CMD whole.
CMD ["intellizap", "api"]
