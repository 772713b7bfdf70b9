# syntax=docker/dockerfile:1
# InfraAI: one image for the bot (`infraai serve`), the workers (`infraai worker`) and the
# one-shot `infraai migrate`. Build: docker build -t infraai .

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/infraai
WORKDIR /src
# Dependencies first, from the lock alone: this layer is rebuilt only when
# requirements.lock changes (`make lock`), not on every source change. Hashes are checked.
COPY requirements.lock ./
RUN /opt/infraai/bin/pip install --require-hashes -r requirements.lock
# Then the source, without dependencies: everything it needs is already pinned above.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY core ./core
COPY adapters ./adapters
RUN /opt/infraai/bin/pip install --no-deps .

FROM python:3.11-slim-bookworm
# nmap for network discovery (connect scans need no root); tini reaps the worker's children.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nmap=7.93* tini=0.19* \
    && rm -rf /var/lib/apt/lists/*
# uid/gid 10001, matched by the Kubernetes manifests' securityContext.
RUN groupadd --system --gid 10001 infraai \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/infraai --create-home infraai
COPY --from=build /opt/infraai /opt/infraai
COPY --chmod=0755 deploy/docker/healthcheck.py /usr/local/bin/docker-healthcheck
ENV PATH=/opt/infraai/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INFRAAI_HOST=0.0.0.0 \
    INFRAAI_PORT=8080
USER 10001:10001
WORKDIR /var/lib/infraai
EXPOSE 8080
# One check for every role: serve → GET /healthz on $INFRAAI_PORT; worker → its RQ
# registration in Redis is alive; migrate and other one-shot commands → nothing to check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["docker-healthcheck"]
ENTRYPOINT ["tini", "--", "infraai"]
CMD ["serve"]
