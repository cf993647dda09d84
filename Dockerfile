# One image for both halves. The default installs the realtime service only (no torch,
# no Dagster); build with `--build-arg EXTRAS=batch` for the Dagster code location.
FROM python:3.11-slim

ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 btc
WORKDIR /app

COPY pyproject.toml README.md workspace.yaml ./
COPY realtime ./realtime
COPY btc_platform ./btc_platform
COPY dbt_like_sql ./dbt_like_sql

# The CPU wheel index keeps torch (batch extra only) from pulling gigabytes of CUDA.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu ".${EXTRAS:+[$EXTRAS]}"

USER btc
ENTRYPOINT ["btc-realtime"]
CMD ["--help"]
