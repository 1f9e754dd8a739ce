# sluice's container image. Build it with scripts/image.sh (podman); see docs/kubernetes.md.
#
# The bases are build arguments. Production: the official Node image of the runtime sluice
# pins (scripts/node-env.sh), e.g.
#   --build-arg BUILD_BASE=node:22.23.3-bookworm --build-arg RUNTIME_BASE=node:22.23.3-bookworm-slim
# Without a registry, scripts/image.sh makes both from Debian's packages (same layout: Node in
# /usr/local). The npm registry configuration and its CA bundle are build secrets (ids npmrc
# and ca), mounted for `npm ci` only and never stored in a layer.
ARG BUILD_BASE=node:22.23.3-bookworm
ARG RUNTIME_BASE=node:22.23.3-bookworm-slim

# ------------------------------------------------------------------ build: node-rdkafka
FROM ${BUILD_BASE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# librdkafka's SSL, SASL (GSSAPI), zstd, lz4 and OIDC (curl) need their headers; the local
# base has them already, the official image gets them here. Debian's stable versions, unpinned.
# hadolint ignore=DL3008
RUN pkgs=(g++ make python3 pkg-config libssl-dev libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev libcurl4-openssl-dev); \
    missing=(); for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done; \
    if [ ${#missing[@]} -gt 0 ]; then \
      apt-get update && apt-get install -y --no-install-recommends "${missing[@]}" && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
COPY package.json package-lock.json ./
# production dependencies only; node-rdkafka compiles its bundled librdkafka against the
# system's libraries, then must report every feature sluice's users configure
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc \
    --mount=type=secret,id=ca,target=/run/secrets/ca \
    npm_config_nodedir=/usr/local npm ci --omit=dev --no-audit --no-fund --loglevel=error \
 && node -e " \
      const f = require('node-rdkafka').features; \
      const need = ['ssl', 'sasl_gssapi', 'sasl_plain', 'sasl_scram', 'sasl_oauthbearer', 'zstd', 'lz4']; \
      const lack = need.filter((x) => !f.includes(x)); \
      if (lack.length > 0) { console.error('librdkafka lacks ' + lack.join(', ') + ' (has ' + f.join(',') + ')'); process.exit(1) }" \
 && k=node_modules/node-rdkafka \
 && rm -rf "$k"/deps "$k"/build/Release/obj.target "$k"/build/Release/.deps "$k"/build/deps/include \
      "$k"/build/deps/share "$k"/build/deps/pkgconfig "$k"/build/deps/librdkafka "$k"/build/deps/*.a \
      "$k"/build/deps/*.mk "$k"/build/deps/*.Makefile "$k"/build/*.mk "$k"/build/Makefile \
      "$k"/build/config.gypi "$k"/src "$k"/e2e "$k"/test "$k"/bench "$k"/examples "$k"/ci \
 && rm -rf /root/.npm /tmp/*
COPY bin ./bin
COPY src ./src
COPY pipelines ./pipelines
COPY sql ./sql

# ------------------------------------------------------------------ runtime
FROM ${RUNTIME_BASE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# runtime libraries only (no compiler, no headers); present in the local base already
# hadolint ignore=DL3008
RUN pkgs=(ca-certificates libssl3 libsasl2-2 libsasl2-modules-gssapi-mit libzstd1 liblz4-1 zlib1g libcurl4); \
    missing=(); for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done; \
    if [ ${#missing[@]} -gt 0 ]; then \
      apt-get update && apt-get install -y --no-install-recommends "${missing[@]}" && rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --gid 10001 sluice && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin sluice
WORKDIR /app
COPY --from=build --chown=0:0 /app /app
ENV NODE_ENV=production \
    SLUICE_HTTP_HOST=0.0.0.0 \
    SLUICE_HTTP_PORT=8080
USER 10001:10001
EXPOSE 8080
# bin/sluice execs node: the worker is PID 1 and receives SIGTERM itself, stops fetching,
# flushes, stores offsets and exits 0 within SLUICE_SHUTDOWN_GRACE_MS
ENTRYPOINT ["/app/bin/sluice"]
