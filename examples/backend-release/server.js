// The reference SwipeSavvy API: the runbook's endpoints on the real schema, as the stack's
// checks assume them (README.md beside this file). Reads only its environment, which the
// boot writes to /etc/swipesavvy/backend.env (components/backend_boot.py).
"use strict";

// First, before anything it instruments is loaded: Express requests become
// `express.request` spans, which the monitors query as trace.express.request.*.
const tracer = require("dd-trace").init({ logInjection: true, startupLogs: false });

const crypto = require("node:crypto");
const fs = require("node:fs");
const tls = require("node:tls");
const express = require("express");
const { Pool } = require("pg");
const StatsD = require("hot-shots");

const SERVICE = "swipesavvy-backend";
const LEVELS = ["debug", "info", "warn", "error"];
const SSL_MODES = ["disable", "require", "verify-ca", "verify-full"];

const env = process.env;
const logLevel = LEVELS.includes(env.LOG_LEVEL) ? env.LOG_LEVEL : "info";

function log(level, message, fields = {}) {
  if (LEVELS.indexOf(level) < LEVELS.indexOf(logLevel)) return;
  const line = { time: new Date().toISOString(), level, service: SERVICE, message, ...fields };
  process.stdout.write(JSON.stringify(line) + "\n");
}

function fail(message) {
  log("error", message);
  process.exit(1);
}

function required(name) {
  const value = env[name];
  if (value === undefined || value === "") fail(`${name} is not set in the environment file`);
  return value;
}

// DB_SSLMODE as libpq reads it: disable, require (TLS, no verification), verify-ca (the
// server's certificate signed by DB_SSLROOTCERT), verify-full (and issued for DB_HOST).
function sslOptions() {
  const mode = env.DB_SSLMODE || "verify-full";
  if (!SSL_MODES.includes(mode)) fail(`DB_SSLMODE=${mode} is not one of ${SSL_MODES.join(", ")}`);
  if (mode === "disable") return false;
  if (mode === "require") return { rejectUnauthorized: false };
  const caFile = required("DB_SSLROOTCERT");
  let ca;
  try {
    ca = fs.readFileSync(caFile, "utf8");
  } catch (error) {
    fail(`DB_SSLROOTCERT=${caFile} cannot be read: ${error.code || error.message}`);
  }
  if (mode === "verify-ca") return { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  // pg hands node's TLS no host for an IP address, and node then checks the name "localhost":
  // check DB_HOST itself.
  const host = required("DB_HOST");
  return { ca, rejectUnauthorized: true, checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert) };
}

// Bearer tokens: API_TOKEN (staging calls) and ADMIN_TOKEN (staging and admin calls). The
// identity a token stands for is the audit log's actor.
// Without them (a stack that does not pass the tokens secret yet), the calls that need one
// answer 503 and everything else still works.
// A rotation's overlap: the next pair (NEXT_API_TOKEN, NEXT_ADMIN_TOKEN), which the next
// rotation makes current, and after a rotation the previous pair (PREVIOUS_...) are accepted
// too, so clients switch to a new pair whenever they like.
const tokens = [
  { token: env.API_TOKEN, identity: "api-token", admin: false },
  { token: env.ADMIN_TOKEN, identity: "admin-token", admin: true },
  ...["NEXT", "PREVIOUS"].flatMap((pair) => [
    { token: env[`${pair}_API_TOKEN`], identity: "api-token", admin: false },
    { token: env[`${pair}_ADMIN_TOKEN`], identity: "admin-token", admin: true },
  ]),
].filter(({ token }) => token);

function caller(req) {
  const match = /^Bearer (\S+)$/.exec(req.get("authorization") || "");
  if (!match) return null;
  const given = Buffer.from(match[1]);
  return (
    tokens.find(({ token }) => {
      const expected = Buffer.from(token);
      return expected.length === given.length && crypto.timingSafeEqual(expected, given);
    }) || null
  );
}

// "public": no token needed (the apps read the flags before anyone signs in, and so does the
// stack's synthetic test when no token variable is configured), but a wrong one is refused.
function authorized(level) {
  return (req, res, next) => {
    if (level !== "public" && tokens.length < 2) {
      return res.status(503).json({ error: "no API tokens configured (API_TOKEN, ADMIN_TOKEN)" });
    }
    const who = caller(req);
    if (!who && !(level === "public" && !req.get("authorization"))) {
      return res.status(401).json({ error: "a valid bearer token is required" });
    }
    if (level === "admin" && !who.admin) return res.status(403).json({ error: "this call needs the admin token" });
    req.caller = who;
    return next();
  };
}

const pool = new Pool({
  host: required("DB_HOST"),
  port: Number(env.DB_PORT || 5432),
  database: required("DB_NAME"),
  user: required("DB_USER"),
  password: required("DB_PASSWORD"),
  max: Number(env.DB_POOL_SIZE || 20),
  ssl: sslOptions(),
  application_name: SERVICE,
  connectionTimeoutMillis: 5000,
});
pool.on("error", (error) => log("error", "idle database connection failed", { error: error.message }));

// DogStatsD to the local agent; every metric carries the env and service tags the monitors
// and the dashboard filter on.
const tags = { env: env.DD_ENV || env.NODE_ENV || "local", service: env.DD_SERVICE || SERVICE };
if (env.DD_VERSION) tags.version = env.DD_VERSION;
const metrics = new StatsD({
  host: env.DD_AGENT_HOST || "127.0.0.1",
  port: Number(env.DD_DOGSTATSD_PORT || 8125),
  globalTags: tags,
  errorHandler: (error) => log("warn", "DogStatsD send failed", { error: error.message }),
});

const FLAG_COLUMNS = "key, name, description, category, enabled, rollout_percentage, updated_at, updated_by";
const flagsEnabled = env.FEATURE_FLAGS_ENABLED !== "false";

async function readFlags() {
  const started = process.hrtime.bigint();
  const { rows } = await pool.query(`SELECT ${FLAG_COLUMNS} FROM feature_flags ORDER BY key`);
  metrics.distribution("swipesavvy.feature_flags.check_latency", Number(process.hrtime.bigint() - started) / 1e6);
  return rows;
}

// A flag change as the runbook's admin API makes it: one transaction, the actor and reason
// set for the audit trigger (sql/003, sql/010), which writes the audit-log entry.
async function changeFlag(req, res, assignment, value) {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      "SELECT set_config('swipesavvy.actor', $1, true), set_config('swipesavvy.change_reason', $2, true)",
      [req.caller.identity, `${req.method} ${req.path}`],
    );
    const { rows } = await client.query(
      `UPDATE feature_flags SET ${assignment}, updated_at = now(), updated_by = $2 WHERE key = $3 RETURNING ${FLAG_COLUMNS}`,
      [value, req.caller.identity, req.params.key],
    );
    await client.query("COMMIT");
    if (rows.length === 0) return res.status(404).json({ error: `no feature flag ${req.params.key}` });
    log("info", "feature flag changed", { flag: req.params.key, actor: req.caller.identity, change: req.body });
    return res.json(rows[0]);
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

const BODY_LIMIT = "16kb";
// Slow clients (a slowloris) are cut off by the server itself, not only by the load balancer.
const HEADERS_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 30000;

const app = express();
app.disable("x-powered-by");
// Every answer is JSON for a program, never sniffed as another type or kept by a cache.
app.use((_req, res, next) => {
  res.set({ "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store" });
  next();
});
// Bodies are parsed only for the calls that take one, after their token is checked: a
// caller without a token cannot make the server read, inflate or refuse a body.
const jsonBody = express.json({ limit: BODY_LIMIT });

// The request's root span (express.request), not the middleware span active in here: its
// name is what the monitors' trace.<name>.* metrics are called.
function requestSpan(span) {
  const trace = span ? span.context()._trace : null;
  return trace && trace.started.length ? trace.started[0] : span;
}

// One JSON line per request, with its span (logs and traces correlate).
app.use((req, res, next) => {
  const started = process.hrtime.bigint();
  const span = requestSpan(tracer.scope().active());
  res.on("finish", () => {
    const context = span ? span.context() : null;
    log("info", "request", {
      method: req.method,
      path: req.path,
      status: res.statusCode,
      ms: Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10,
      span: context ? context._name : null,
      dd: context ? { trace_id: context.toTraceId(), span_id: context.toSpanId() } : null,
    });
  });
  next();
});

const route = (handler) => (req, res, next) => Promise.resolve(handler(req, res)).catch(next);

app.get(
  "/api/health",
  route(async (_req, res) => {
    await pool.query("SELECT 1");
    res.json({ status: "healthy", service: SERVICE });
  }),
);

app.get(
  "/api/features/all",
  authorized("public"),
  route(async (_req, res) => {
    if (!flagsEnabled) return res.status(503).json({ error: "feature flags are disabled (FEATURE_FLAGS_ENABLED)" });
    return res.json(await readFlags());
  }),
);

app.post(
  "/api/features/:key/toggle",
  authorized("admin"),
  jsonBody,
  route(async (req, res) => {
    const enabled = req.body ? req.body.enabled : undefined;
    if (typeof enabled !== "boolean") return res.status(400).json({ error: '"enabled" must be true or false' });
    return changeFlag(req, res, "enabled = $1", enabled);
  }),
);

app.post(
  "/api/features/:key/rollout",
  authorized("admin"),
  jsonBody,
  route(async (req, res) => {
    const percentage = req.body ? req.body.percentage : undefined;
    if (!Number.isInteger(percentage) || percentage < 0 || percentage > 100) {
      return res.status(400).json({ error: '"percentage" must be an integer from 0 to 100' });
    }
    return changeFlag(req, res, "rollout_percentage = $1", percentage);
  }),
);

app.get(
  "/api/features/audit-log",
  authorized("admin"),
  route(async (_req, res) => {
    const { rows } = await pool.query(
      "SELECT id, flag_key, action, old_value, new_value, changed_by, session_login, reason, changed_at" +
        " FROM feature_flag_audit_log ORDER BY changed_at DESC, id DESC LIMIT 100",
    );
    res.json(rows);
  }),
);

app.get(
  "/api/analytics/campaign/:id/metrics",
  authorized("staging"),
  route(async (req, res) => {
    if (!/^\d{1,18}$/.test(req.params.id)) return res.status(400).json({ error: "the campaign id is a number" });
    const { rows } = await pool.query("SELECT * FROM reporting.campaign_performance WHERE campaign_id = $1", [
      req.params.id,
    ]);
    if (rows.length === 0) return res.status(404).json({ error: `no metrics for campaign ${req.params.id}` });
    return res.json(rows[0]);
  }),
);

app.post(
  "/api/export",
  authorized("staging"),
  jsonBody,
  route(async (req, res) => {
    const format = req.body ? req.body.format : undefined;
    if (format !== "json") return res.status(400).json({ error: '"format" must be "json"' });
    const { rows } = await pool.query("SELECT * FROM reporting.campaign_performance ORDER BY campaign_id");
    return res.json({ format, generated_at: new Date().toISOString(), campaigns: rows });
  }),
);

app.use((_req, res) => res.status(404).json({ error: "not found" }));

// A client's mistake (a body over the limit, an encoding or charset not taken, JSON that does
// not parse) is answered with its own 4xx status; only the server's own failures are 500s.
const CLIENT_ERRORS = {
  "entity.parse.failed": "the body is not JSON",
  "entity.too.large": `the body is over ${BODY_LIMIT}`,
  "encoding.unsupported": "the body's Content-Encoding is not accepted (send it uncompressed)",
  "charset.unsupported": "the body's charset is not accepted (send UTF-8)",
};
// eslint-disable-next-line no-unused-vars
app.use((error, req, res, _next) => {
  const status = error.status || error.statusCode;
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    return res.status(status).json({ error: CLIENT_ERRORS[error.type] || (error.expose ? error.message : "refused") });
  }
  log("error", "request failed", { method: req.method, path: req.path, error: error.message });
  return res.status(500).json({ error: "internal error" });
});

// Ingestion throughput: rows the database took in (every table of this database), sent as
// a count each INGESTION_SAMPLE_S seconds.
const sampleSeconds = Number(env.INGESTION_SAMPLE_S || 60);
let inserted = null;
async function sampleIngestion() {
  try {
    const { rows } = await pool.query("SELECT coalesce(sum(n_tup_ins), 0)::bigint AS n FROM pg_stat_user_tables");
    const now = Number(rows[0].n);
    if (inserted !== null) metrics.increment("swipesavvy.ingestion.records", Math.max(0, now - inserted));
    inserted = now;
  } catch (error) {
    log("warn", "ingestion sample failed", { error: error.message });
  }
}
const sampler = setInterval(sampleIngestion, sampleSeconds * 1000);
sampleIngestion();

const port = Number(env.API_PORT || 8080);
const server = app.listen(port, env.API_HOST || "0.0.0.0", () =>
  log(tokens.length < 2 ? "warn" : "info", "listening", {
    port,
    headers_timeout_ms: server.headersTimeout,
    request_timeout_ms: server.requestTimeout,
    node_env: env.NODE_ENV,
    db_sslmode: env.DB_SSLMODE || "verify-full",
    api_tokens: tokens.length < 2 ? "not configured: token calls answer 503" : "configured",
  }),
);

server.headersTimeout = HEADERS_TIMEOUT_MS;
server.requestTimeout = REQUEST_TIMEOUT_MS;

function shutdown(signal) {
  log("info", "stopping", { signal });
  clearInterval(sampler);
  server.close(() => pool.end().then(() => metrics.close(() => process.exit(0))));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
