# Strata server image: `docker build -t strata .` (used by docker-compose.minio.yml).
# Build stage compiles TypeScript with the locked dev dependencies; the runtime stage
# keeps production dependencies only. DuckDB's native binary comes from npm
# (@duckdb/node-bindings-linux-x64 / -arm64), so glibc (Debian) is required, not Alpine.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    UV_THREADPOOL_SIZE=12 \
    STRATA_HOST=0.0.0.0 \
    STRATA_PORT=8000 \
    STRATA_DATA_DIR=/var/lib/strata
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY config ./config
RUN mkdir -p /var/lib/strata && chown node:node /var/lib/strata
USER node
VOLUME /var/lib/strata
EXPOSE 8000
CMD ["node", "--max-semi-space-size=64", "--initial-old-space-size=256", "--enable-source-maps", "dist/src/main.js"]
