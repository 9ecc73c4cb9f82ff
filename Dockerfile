# syntax=docker/dockerfile:1
# One image for every rapidtrace service (bridge, consumers, API, migrate, admin CLI);
# docker-compose.yml picks the command. Slim, non-root, pinned base.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: a virtualenv with the dependencies, then the package ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY schemas schemas
COPY domain domain
COPY storage storage
COPY ingest ingest
COPY consumers consumers
COPY api api
COPY simulators simulators
COPY runtime runtime
COPY bench bench
RUN pip install --no-deps .

# ---- runtime ----
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# uid 10001 runs rapidtrace. gid 1883 is the `mosquitto` group of the eclipse-mosquitto
# image: the password and ACL files rapidtrace writes (0640, in a setgid directory) are
# readable by the broker and by no one else.
RUN groupadd --system --gid 10001 rapidtrace \
    && groupadd --system --gid 1883 mqttauth \
    && useradd --system --uid 10001 --gid 10001 --groups mqttauth \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin rapidtrace \
    && install -d -o 10001 -g 1883 -m 2750 /var/lib/rapidtrace/mqtt-auth
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY deploy/healthcheck.py /app/deploy/healthcheck.py
USER 10001:10001
EXPOSE 8000
CMD ["rapidtrace", "--help"]
