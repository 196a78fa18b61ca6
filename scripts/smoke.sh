#!/usr/bin/env bash
# The container image's parts, checked without a container engine: the Dockerfile's two stages are reproduced
# in a scratch folder on the Dockerfile's Node major version (the npm registry's `node` package), then the
# service is started from the production install against a fresh PostgreSQL database, used, and stopped with
# SIGTERM, and the operator CLI is run from the same install. One PASS or FAIL line per check; the first FAIL
# ends the run with a non-zero status and the end of the log that explains it.
#
# Needs npm, and PostgreSQL on 127.0.0.1:5432 where user postgres may create databases without a password.
# Uses Redis on 127.0.0.1:6379 when one answers. SMOKE_KEEP=1 keeps the scratch folder for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
started=$SECONDS

PG=(-h 127.0.0.1 -p 5432 -U postgres)
DEMO_ORIGIN=http://localhost:8080
PASSWORD='smoke test passphrase 42'

work=$(mktemp -d "${TMPDIR:-/tmp}/auth-smoke.XXXXXX")
database=""
server_pid=""
checks=0

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  if [ -n "$database" ]; then dropdb "${PG[@]}" --if-exists --force "$database" >/dev/null 2>&1 || echo "warning: could not drop database $database" >&2; fi
  if [ "${SMOKE_KEEP:-}" = 1 ]; then echo "scratch folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() {
  checks=$((checks + 1))
  echo "PASS: $*"
}
# fail WHAT [LOG]: the check that failed, then the end of the log that says why.
fail() {
  echo "FAIL: $1" >&2
  if [ -n "${2:-}" ] && [ -s "$2" ]; then
    echo "---- last lines of $(basename "$2") ----" >&2
    tail -n 40 "$2" >&2
  fi
  exit 1
}
step() { echo "== $* (at $((SECONDS - started)) s)"; }

# ---- Node: the Dockerfile's major version, so the check runs what the image runs.
mapfile -t majors < <(sed -n 's/^FROM node:\([0-9][0-9]*\)-.*/\1/p' Dockerfile | sort -u)
[ "${#majors[@]}" = 1 ] || fail "the Dockerfile's stages should share one node:<major> base image, found: ${majors[*]:-none}"
major=${majors[0]}

# --prefer-offline lets npm's cache answer without asking the registry again: any $major.x will do here, and the
# installs below follow the lock file's versions and checksums either way.
step "Node $major from the npm registry"
npm install --no-save --no-audit --no-fund --prefer-offline --loglevel=error --prefix "$work/node" "node@$major" >"$work/node-install.log" 2>&1 ||
  fail "npm install node@$major" "$work/node-install.log"
node_bin="$work/node/node_modules/node/bin"
[ -x "$node_bin/node" ] || fail "npm install node@$major left no executable at node_modules/node/bin/node"
# npm itself is a node script: with this folder first on PATH it runs on Node $major too, as in the image.
export PATH="$node_bin:$PATH"
version=$(node --version)
[[ $version == "v$major."* ]] || fail "node on PATH is $version, not $major.x"
npm_node=$(npm version --json 2>/dev/null | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).node')
[[ $npm_node == "$major."* ]] || fail "npm runs on Node $npm_node, not $major.x"
pass "node $version, npm $(npm --version) running on it"

# ---- The build stage: what the Dockerfile copies, then `npm ci` and `npm run build`.
step "build stage: npm ci, npm run build"
build="$work/build"
mkdir -p "$build"
cp package.json package-lock.json tsconfig.json tsconfig.build.json "$build/"
cp -R scripts src "$build/"
(cd "$build" && npm ci --no-audit --no-fund --prefer-offline && npm run build && chmod 755 dist/cli.js) >"$work/build.log" 2>&1 ||
  fail "build stage (npm ci && npm run build)" "$work/build.log"
[ -f "$build/dist/server.js" ] && [ -f "$build/dist/cli.js" ] || fail "the build made no dist/server.js or dist/cli.js" "$work/build.log"
migrations=$(find "$build/dist/kernel/db/migrations" -name '*.sql' | wc -l)
[ "$migrations" -gt 0 ] || fail "the build copied no migrations to dist/kernel/db/migrations"
pass "build stage: dist/ built ($migrations migrations)"

# ---- The run stage: package.json, the lock and dist/ only, production dependencies only.
step "run stage: npm ci --omit=dev, the built dist/"
app="$work/app"
mkdir -p "$app"
cp package.json package-lock.json "$app/"
(cd "$app" && npm ci --omit=dev --no-audit --no-fund --prefer-offline) >"$work/run-install.log" 2>&1 ||
  fail "run stage (npm ci --omit=dev)" "$work/run-install.log"
cp -R "$build/dist" "$app/dist"
for dev_only in typescript tsx vitest; do
  [ ! -e "$app/node_modules/$dev_only" ] || fail "the production install has the dev dependency $dev_only"
done
(cd "$app" && node --input-type=module -e "const { hash, verify } = await import('@node-rs/argon2');
if (!(await verify(await hash('x'), 'x'))) process.exit(1);") >"$work/argon2.log" 2>&1 ||
  fail "@node-rs/argon2's native binary does not load in the production install" "$work/argon2.log"
pass "run stage: production dependencies only; argon2's native binary loads on Node $major"

# The operator CLI as the package's bin, and as the image links it: a symlink on PATH to dist/cli.js.
[ "$(cd "$app" && node -p 'require("./package.json").bin["user-auth"]')" = dist/cli.js ] ||
  fail 'package.json has no "bin": {"user-auth": "dist/cli.js"}'
[ "$(head -n 1 "$app/dist/cli.js")" = '#!/usr/bin/env node' ] || fail "dist/cli.js does not start with #!/usr/bin/env node"
mkdir -p "$work/bin"
ln -s "$app/dist/cli.js" "$work/bin/user-auth"
export PATH="$work/bin:$PATH"

# Everything the processes below see: nothing of this shell's own settings leaks in, as in a container.
base_env=(env -i "PATH=$PATH" "HOME=$work" NODE_ENV=production)

# cli NAME ARGS...: the CLI through the user-auth link, from the app folder, with the environment in cli_env.
cli() {
  local name=$1
  shift
  (cd "$app" && "${base_env[@]}" "${cli_env[@]}" user-auth "$@") >"$work/cli-$name.log" 2>&1
}

# ---- The CLI from the production install, on the embedded database (an image built with EMBEDDED_DATABASE=true).
step "CLI on the embedded database in the app folder"
cli_env=(PUBLIC_URL=https://auth.smoke.test ALLOW_EMBEDDED_DATABASE=true "DATA_DIR=$app/data")
cli help --help || fail "user-auth --help" "$work/cli-help.log"
grep -q 'keys:rotate' "$work/cli-help.log" || fail "user-auth --help lists no keys:rotate" "$work/cli-help.log"
pass "user-auth --help"
cli migrate migrate || fail "user-auth migrate (embedded)" "$work/cli-migrate.log"
grep -q "applied $migrations migration(s)" "$work/cli-migrate.log" || fail "user-auth migrate did not apply $migrations migrations" "$work/cli-migrate.log"
pass "user-auth migrate (embedded, in the app folder): $migrations migrations applied"
cli rotate keys:rotate || fail "user-auth keys:rotate (embedded)" "$work/cli-rotate.log"
grep -q 'new signing key' "$work/cli-rotate.log" || fail "user-auth keys:rotate made no key" "$work/cli-rotate.log"
pass "user-auth keys:rotate (embedded)"

# ---- The default image: PGlite removed after the production install.
step "without the embedded database (the default image)"
rm -rf "$app/node_modules/@electric-sql"
refusal='the embedded database is not installed in this image: set DATABASE_URL, or build with --build-arg EMBEDDED_DATABASE=true'
status=0
(cd "$app" && "${base_env[@]}" PUBLIC_URL=https://auth.smoke.test ALLOW_EMBEDDED_DATABASE=true "DATA_DIR=$app/data" HOST=127.0.0.1 PORT=0 \
  timeout 60 node --max-old-space-size=128 --max-semi-space-size=4 dist/server.js) >"$work/server-refusal.log" 2>&1 || status=$?
[ "$status" = 1 ] || fail "without PGlite and DATABASE_URL the server exited $status, not 1" "$work/server-refusal.log"
grep -qF "$refusal" "$work/server-refusal.log" || fail "the server's refusal does not say what to do" "$work/server-refusal.log"
pass "server without DATABASE_URL exits 1: $refusal"
status=0
cli refusal migrate || status=$?
[ "$status" = 1 ] || fail "without PGlite and DATABASE_URL user-auth migrate exited $status, not 1" "$work/cli-refusal.log"
grep -qF "$refusal" "$work/cli-refusal.log" || fail "user-auth migrate's refusal does not say what to do" "$work/cli-refusal.log"
! grep -q '^    at ' "$work/cli-refusal.log" || fail "user-auth migrate printed a stack trace" "$work/cli-refusal.log"
pass "user-auth migrate without DATABASE_URL exits 1 with the same message"

# ---- PostgreSQL: a database of its own, the CLI, then the service as the image's CMD starts it.
step "on PostgreSQL, with the image's command"
pg_isready -q "${PG[@]}" || fail "no PostgreSQL on 127.0.0.1:5432"
database="auth_smoke_$$"
createdb "${PG[@]}" "$database" >"$work/createdb.log" 2>&1 || { database=""; fail "createdb" "$work/createdb.log"; }
database_url="postgres://postgres@127.0.0.1:5432/$database"
redis=()
redis_note="without Redis"
if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  redis=(REDIS_URL=redis://127.0.0.1:6379 "REDIS_KEY_PREFIX=auth-smoke-$$:")
  redis_note="with Redis"
fi

cli_env=(PUBLIC_URL=https://auth.smoke.test "DATABASE_URL=$database_url")
cli pg-migrate migrate || fail "user-auth migrate (PostgreSQL)" "$work/cli-pg-migrate.log"
grep -q "applied $migrations migration(s)" "$work/cli-pg-migrate.log" || fail "user-auth migrate did not apply $migrations migrations" "$work/cli-pg-migrate.log"
cli pg-rotate keys:rotate || fail "user-auth keys:rotate (PostgreSQL)" "$work/cli-pg-rotate.log"
kid=$(sed -n 's/^new signing key \([^ ]*\) .*/\1/p' "$work/cli-pg-rotate.log")
[ -n "$kid" ] || fail "user-auth keys:rotate named no key" "$work/cli-pg-rotate.log"
printf %s "$PASSWORD" | cli pg-create user:create smoke_operator || fail "user-auth user:create (PostgreSQL)" "$work/cli-pg-create.log"
pass "user-auth migrate, keys:rotate, user:create on PostgreSQL"

port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
base="http://127.0.0.1:$port"
# The image's CMD, with compose.yaml's kind of settings; on the loopback only, unlike the image's 0.0.0.0.
(cd "$app" && exec "${base_env[@]}" HOST=127.0.0.1 "PORT=$port" "DATABASE_URL=$database_url" "${redis[@]}" \
  "PUBLIC_URL=http://localhost:$port" ALLOW_HTTP_PUBLIC_URL=true "CORS_ORIGINS=$DEMO_ORIGIN" \
  node --max-old-space-size=128 --max-semi-space-size=4 dist/server.js) >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 120); do
  curl -fsS --max-time 2 "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited before answering /healthz" "$work/server.log"
  sleep 0.5
done
curl -fsS --max-time 5 "$base/healthz" >/dev/null 2>&1 || fail "no answer on /healthz within 60 s" "$work/server.log"
pass "node --max-old-space-size=128 --max-semi-space-size=4 dist/server.js (NODE_ENV=production, $redis_note) answers /healthz"

# request NAME METHOD PATH [BODY] [TOKEN]: the status code; the body in $work/NAME.json, headers in NAME.headers.
request() {
  local name=$1 method=$2 path=$3 body=${4:-} token=${5:-}
  local args=(-sS --max-time 30 -o "$work/$name.json" -D "$work/$name.headers" -w '%{http_code}' -X "$method" -H "Origin: $DEMO_ORIGIN")
  [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data "$body")
  [ -z "$token" ] || args+=(-H "Authorization: Bearer $token")
  curl "${args[@]}" "$base$path" 2>>"$work/curl.log" || echo "no answer"
}
field() { node -p "JSON.parse(require('fs').readFileSync('$work/$1.json', 'utf8'))['$2']"; }
expect_status() {
  [ "$2" = "$3" ] || { cat "$work/$1.json" >>"$work/server.log" 2>/dev/null; fail "$4: answered $2, expected $3" "$work/server.log"; }
}

credentials="{\"username\": \"smoke_user\", \"password\": \"$PASSWORD\", \"password_confirm\": \"$PASSWORD\"}"
expect_status register "$(request register POST /api/auth/register "$credentials")" 201 "POST /api/auth/register"
grep -qi "^access-control-allow-origin: $DEMO_ORIGIN" "$work/register.headers" ||
  fail "no Access-Control-Allow-Origin: $DEMO_ORIGIN on the demo page's request" "$work/register.headers"
pass "register: 201, CORS allows $DEMO_ORIGIN"

expect_status login "$(request login POST /api/auth/login "{\"username\": \"smoke_user\", \"password\": \"$PASSWORD\"}")" 200 "POST /api/auth/login"
token=$(field login access_token)
expect_status me "$(request me GET /api/auth/me '' "$token")" 200 "GET /api/auth/me"
[ "$(field me username)" = smoke_user ] || fail "GET /api/auth/me is not smoke_user's" "$work/me.json"
pass "login: 200; /api/auth/me with its token: 200, smoke_user"

expect_status operator "$(request operator POST /api/auth/login "{\"username\": \"smoke_operator\", \"password\": \"$PASSWORD\"}")" 200 \
  "login as the user the CLI created"
expect_status jwks "$(request jwks GET /.well-known/jwks.json)" 200 "GET /.well-known/jwks.json"
grep -q "\"kid\":\"$kid\"" "$work/jwks.json" || fail "the JWKS lacks the key keys:rotate made ($kid)" "$work/jwks.json"
pass "the CLI's user logs in; the CLI's key $kid is in the JWKS"

expect_status readyz "$(request readyz GET /readyz)" 200 "GET /readyz"
pass "/readyz: 200 $(cat "$work/readyz.json")"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" = 0 ] || fail "after SIGTERM the server exited $status, not 0" "$work/server.log"
grep -q '"msg":"stopped"' "$work/server.log" || fail "the server did not log its graceful stop" "$work/server.log"
pass "SIGTERM: graceful stop, exit 0"

echo "smoke: all $checks checks passed in $((SECONDS - started)) s (Node $version)"
