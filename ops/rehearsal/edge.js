// The CloudFront distribution as `ops rehearse` stands it up on this machine: /api/* goes to
// the backend unchanged (no cache), everything else is the site's build after the viewer-
// request function the stack deploys (its own code, from the plan) has rewritten the URI.
// Settings from the environment: EDGE_PORT, SITE_DIR, FUNCTION_FILE, API_ORIGIN.
"use strict";
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const siteDir = path.resolve(process.env.SITE_DIR);
const code = fs.readFileSync(process.env.FUNCTION_FILE, "utf8");
const handler = new Function(`${code}\nreturn handler;`)(); // cloudfront-js: a plain `handler` function
const api = new URL(process.env.API_ORIGIN);
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

function forward(req, res) {
  const upstream = http.request(
    { host: api.hostname, port: api.port, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", () => {
    res.writeHead(502, { "Content-Type": "text/plain" });
    res.end("502 Bad Gateway: the backend did not answer");
  });
  req.pipe(upstream);
}

function serve(req, res) {
  const uri = new URL(req.url, "http://edge").pathname;
  const request = handler({ request: { method: req.method, uri, headers: {}, querystring: {} } }).uri;
  const file = path.join(siteDir, decodeURIComponent(request));
  if (!file.startsWith(siteDir + path.sep)) {
    res.writeHead(403);
    return res.end();
  }
  fs.readFile(file, (error, body) => {
    if (error) {
      // S3 behind an origin access control answers 403 for a missing key.
      res.writeHead(403, { "Content-Type": "text/plain" });
      return res.end("403 Forbidden");
    }
    res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream" });
    return res.end(req.method === "HEAD" ? undefined : body);
  });
}

const server = http.createServer((req, res) => (req.url.startsWith("/api/") ? forward(req, res) : serve(req, res)));
server.listen(Number(process.env.EDGE_PORT), "127.0.0.1", () => console.log("edge listening"));
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref(); // keep-alive connections do not hold it open
});
