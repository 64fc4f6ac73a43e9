# digestbot container image.
#
#   docker build -t digestbot .
#   docker run -d --name digestbot -e DISCORD_TOKEN=... \
#       -v digestbot-data:/data -v "$PWD/config:/config:ro" -p 8080:8080 digestbot
#
# Works with any Debian-style Python >= 3.11 base that has `python3 -m venv` (the official
# python:3.11-slim, or the Debian stand-in built by tests/container/make_base_image.sh).
# buildah/podman: build with `--format docker`, or the OCI format drops the HEALTHCHECK.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder: a venv in /opt/venv
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DEFAULT_TIMEOUT=120
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the source does not reinstall them.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the project itself (source last: the layer most often rebuilt).
COPY README.md LICENSE ./
COPY bot/ ./bot/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps . \
 && pip check \
 && digestbot --version

# ---------------------------------------------------------------- final image
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DIGESTBOT_DATA_DIR=/data \
    DIGESTBOT_CONFIG=/config/digestbot.yaml \
    DIGESTBOT_HEALTH_PORT=8080 \
    MALLOC_ARENA_MAX=2
# (DIGESTBOT_HEALTH_PORT: where `digestbot healthcheck` looks; keep it equal to health.port in the config)
# (MALLOC_ARENA_MAX=2: without it glibc gives each worker thread its own heap arena and keeps what the
#  search index's commits free; bench/soak measured RSS 95 → 200 MB over a simulated day with 1,000
#  feeds, flat at ~115 MB with it)

# Fixed uid/gid so a bind-mounted /data can be chowned to 10001 on the host.
RUN groupadd --gid 10001 digestbot \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin digestbot \
 && mkdir -p /data /config \
 && chown 10001:10001 /data \
 && chmod 0750 /data

COPY --from=builder /opt/venv /opt/venv

# after the heavy layers, so a new revision only rebuilds metadata
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="digestbot" \
      org.opencontainers.image.description="Self-hosted Discord bot that posts new feed entries as embeds and searches everything it has seen" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# numeric, so Kubernetes' runAsNonRoot can verify it
USER 10001:10001
WORKDIR /data
# SQLite database and search index (storage.path relative paths resolve here)
VOLUME ["/data"]
# health endpoint (health.port); /healthz
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["digestbot", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["digestbot"]
CMD ["run"]
