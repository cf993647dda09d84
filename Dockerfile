# syntax=docker/dockerfile:1
# One Dockerfile, one image per EXTRAS value:
#
#   docker build -t btc-platform/realtime .                          # the live service only
#   docker build -t btc-platform/batch --build-arg EXTRAS=batch .    # + Dagster, pyiceberg, torch
#
# The realtime service imports neither Dagster nor torch (test_import_boundary.py), so its
# image stays small and restarts fast; the batch image holds every entry point
# (btc-realtime, btc-sim, btc-models, dagster-webserver, dagster-daemon) and can run the
# whole stack, which is what docker-compose.yml does. See docs/deployment.md.
#
# Two stages: the first builds a virtualenv in /opt/venv, the second copies only that
# virtualenv. No source tree, build backend or pip cache ends up in the image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

# "" (the realtime service) or "batch" (the Dagster code location too).
ARG EXTRAS=""
# The Dagster release pinned in pyproject's batch extra; dagster-postgres (the instance
# storage of deploy/dagster/dagster.yaml) is a deployment dependency, not a project one.
ARG DAGSTER_POSTGRES_VERSION=0.29.27
# torch comes from the CPU wheel index: PyPI's Linux torch wheels pull gigabytes of CUDA
# libraries. The index's wheels are versioned 2.13.0+cpu, which satisfies pyproject's
# torch==2.13.0 and sorts above PyPI's 2.13.0, so pip takes them.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.md is the package's readme (pyproject), so the build needs it.
COPY pyproject.toml README.md ./
COPY realtime ./realtime
COPY btc_platform ./btc_platform
COPY dbt_like_sql ./dbt_like_sql

# pip check catches a broken resolution; the torch check fails the build rather than ship
# a CUDA torch by accident (e.g. if the CPU index was unreachable and PyPI answered).
RUN set -eux; \
    case ",${EXTRAS}," in \
      *,batch,*) set -- "dagster-postgres==${DAGSTER_POSTGRES_VERSION}" ;; \
      *) set -- ;; \
    esac; \
    pip install --extra-index-url "${TORCH_INDEX_URL}" ".${EXTRAS:+[$EXTRAS]}" "$@"; \
    pip check; \
    if python -c "import torch" 2>/dev/null; then \
      python -c "import sys, torch; sys.exit(0 if torch.__version__.endswith('+cpu') else 'torch ' + torch.__version__ + ' is not the CPU build')"; \
    fi; \
    btc-realtime --help >/dev/null


FROM ${PYTHON_IMAGE} AS runtime

# tini is PID 1: it forwards SIGTERM to the command (btc-realtime closes its capture
# segments on it) and reaps the processes dagster-daemon starts for runs and code servers.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends tini; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --gid 10001 btc; \
    useradd --uid 10001 --gid 10001 --create-home --home-dir /home/btc --shell /usr/sbin/nologin btc; \
    mkdir -p /data /opt/dagster/home; \
    chown btc:btc /data /opt/dagster/home

COPY --from=build /opt/venv /opt/venv

# Defaults for a container; every BTC_* name is a field of RealtimeSettings or
# LakehouseSettings. /data is the volume the realtime service and Dagster share (capture
# segments, the local model store, downloads). The metrics server must listen on every
# interface to be probed and scraped from outside the container (its default is 127.0.0.1).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BTC_DATA_DIR=/data \
    BTC_METRICS_HOST=0.0.0.0 \
    BTC_METRICS_PORT=9108 \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_PG_PORT=5432 \
    DAGSTER_COMPUTE_LOGS_DIR=/data/dagster/compute-logs

WORKDIR /app
# workspace.yaml loads the btc_platform code location from the installed package; the
# instance config reads its PostgreSQL connection from DAGSTER_PG_* at start (host, user,
# database and password have no default: they come from compose or the manifests).
COPY workspace.yaml ./
COPY deploy/dagster/dagster.yaml /opt/dagster/home/dagster.yaml

# Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001

# 9108: /metrics and /healthz of btc-realtime; 3000: dagster-webserver; 8765: btc-sim serve.
EXPOSE 9108 3000 8765

# For the default command only (the realtime service): healthy = /healthz says ready
# (book valid, features fresh, model loaded). docker-compose.yml gives the Dagster
# containers their own checks; Kubernetes ignores this and uses the probes in deploy/k8s.
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BTC_METRICS_PORT', '9108'), timeout=2)"]

ENTRYPOINT ["tini", "--"]
CMD ["btc-realtime", "run"]
