# syntax=docker/dockerfile:1
# InfraAI: one image for the bot (`infraai serve`), the worker (`infraai worker`) and the
# one-shot `infraai migrate`. Build: docker build -t infraai .

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/infraai
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY core ./core
COPY adapters ./adapters
RUN /opt/infraai/bin/pip install .

FROM python:3.11-slim-bookworm
# nmap for network discovery (connect scans need no root); tini reaps the worker's children.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nmap=7.93* tini=0.19* \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /var/lib/infraai --create-home infraai
COPY --from=build /opt/infraai /opt/infraai
ENV PATH=/opt/infraai/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INFRAAI_HOST=0.0.0.0 \
    INFRAAI_PORT=8080
USER 10001
WORKDIR /var/lib/infraai
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["tini", "--", "infraai"]
CMD ["serve"]
