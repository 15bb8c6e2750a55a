# One image for every Sealflow daemon; the command picks the daemon (see docker-compose.yml).
# Swagger UI for the gateway's /docs, from npm's swagger-ui-dist (the version the Makefile pins).
FROM node:20-slim AS swagger-ui
ARG SWAGGER_UI_VERSION=5.35.0
WORKDIR /swagger-ui
RUN npm pack --silent swagger-ui-dist@${SWAGGER_UI_VERSION} \
    && tar -xzf swagger-ui-dist-${SWAGGER_UI_VERSION}.tgz --strip-components=1 \
       package/swagger-ui-bundle.js package/swagger-ui.css package/index.css \
       package/favicon-16x16.png package/favicon-32x32.png package/LICENSE package/NOTICE \
    && rm swagger-ui-dist-${SWAGGER_UI_VERSION}.tgz

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY keys keys
COPY broker broker
COPY store store
COPY identity identity
COPY gateway gateway
COPY workers workers
COPY parser parser
COPY audit audit
COPY sealflow sealflow
COPY --from=swagger-ui /swagger-ui /usr/local/share/sealflow/swagger-ui
# The mount points exist owned by sealflow, so the named volumes Compose mounts there are too.
RUN pip install --no-cache-dir . && useradd --system --uid 10001 sealflow \
    && mkdir -p /var/lib/sealflow/keys /var/lib/sealflow/blobs /var/lib/sealflow-anchor \
       /srv/keys/admin /srv/keys/identity /srv/keys/gateway /srv/keys/worker /srv/keys/parser \
       /srv/keys/audit \
    && chown -R sealflow /var/lib/sealflow /var/lib/sealflow-anchor /srv/keys
USER sealflow
ENV SEALFLOW_DATA_DIR=/var/lib/sealflow SEALFLOW_KEYS_DIR=/var/lib/sealflow/keys
ENTRYPOINT ["sealflow"]
