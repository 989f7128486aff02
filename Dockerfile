# syntax=docker/dockerfile:1.7
# hulk-ops: one image, three roles. The command picks the role:
#   docker run IMAGE                                   -> collect (the default)
#   docker run IMAGE dashboard --host 0.0.0.0          -> the Streamlit dashboard
#   docker run IMAGE api --host 0.0.0.0                -> the read-only JSON API (port 8502)
# Config: mount a YAML file at /etc/hulk-ops/config.yaml (or set HULK_OPS_CONFIG); secrets come in as
# environment variables referenced from it as ${NAME}.

ARG PYTHON_VERSION=3.11

# -- build: resolve from the lock file only, into /app/.venv (no compilers in the final image) --------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# dependencies first: this layer is reused until pyproject.toml or uv.lock change
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY hulk_ops ./hulk_ops
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# -- runtime: the interpreter, the venv, a non-root user; nothing else ------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG UID=10001
RUN groupadd --system --gid ${UID} hulk \
    && useradd --system --uid ${UID} --gid hulk --home-dir /home/hulk --create-home --shell /usr/sbin/nologin hulk \
    && mkdir -p /etc/hulk-ops && chown hulk:hulk /etc/hulk-ops
COPY --from=build --chown=hulk:hulk /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HULK_OPS_CONFIG=/etc/hulk-ops/config.yaml \
    HOME=/home/hulk
USER 10001:10001
WORKDIR /home/hulk
# 9464: the collector's /metrics; 8501: the dashboard; 8502: the API
EXPOSE 9464 8501 8502
# checks whichever role runs: /healthz of the collector (its event loop runs), /_stcore/health of the dashboard, /healthz of the API
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "hulk_ops.entrypoints.healthcheck"]
ENTRYPOINT ["hulk-ops"]
CMD ["collect", "--metrics-host", "0.0.0.0", "--metrics-port", "9464"]
