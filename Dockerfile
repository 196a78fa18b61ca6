# syntax=docker/dockerfile:1
# Both stages on the same Node LTS: the compiled output and the native hashing module must match the runtime.
# Build: compile TypeScript with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && chmod 755 dist/cli.js

# Run: production dependencies and the compiled service only, as the unprivileged `node` user.
FROM node:24-bookworm-slim
# The embedded database (PGlite, 27 MB) is for trying the service out; production runs on DATABASE_URL. Without
# it the service refuses to start on no DATABASE_URL and says how to get it: --build-arg EMBEDDED_DATABASE=true
# (then ALLOW_EMBEDDED_DATABASE=true, one instance, its data in the /data volume).
ARG EMBEDDED_DATABASE=false
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=5000 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# Not --omit=optional: @node-rs/argon2 reaches its compiled binary through a platform-specific optional dependency.
# The symlink puts the operator CLI on PATH: `docker compose exec auth user-auth keys:rotate`.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && if [ "$EMBEDDED_DATABASE" != "true" ]; then rm -rf node_modules/@electric-sql; fi \
 && ln -s /app/dist/cli.js /usr/local/bin/user-auth \
 && mkdir /data && chown node:node /data
COPY --from=build /app/dist ./dist
USER node
VOLUME /data
EXPOSE 5000
# Liveness only: readiness (database, Redis) is /readyz, for the orchestrator's own probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=40s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 5000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node itself is PID 1 (no npm or shell in between), so SIGTERM from `docker stop` reaches its graceful shutdown.
# The heap cap makes V8 collect garbage before memory grows: under a flood of 1,000 connections, peak RSS was
# 226 MB instead of 320 MB (npm run bench, one log line per request). Raise it for instances with much more
# traffic. The young generation's cap does the same for short-lived objects, which a flood makes by the
# thousand: by default V8 lets each semi-space grow to 16 MB, about 25 MB more RSS than with 4, for no
# measurable CPU per login. Both are given here and not as NODE_OPTIONS, which npm and the CLI would inherit too.
CMD ["node", "--max-old-space-size=128", "--max-semi-space-size=4", "dist/server.js"]
