// Stand-in for the SwipeSavvy API until a real release is named in the stack config:
// answers the runbook's health check and lists the flags, on API_PORT, under /api.
"use strict";
const http = require("node:http");

const port = Number(process.env.API_PORT || 8080);

const server = http.createServer((req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (req.method === "GET" && req.url === "/api/health") {
    return reply(200, { status: "healthy", service: "swipesavvy-backend" });
  }
  return reply(404, { error: "not found" });
});

server.listen(port, "0.0.0.0", () => console.log(`swipesavvy-backend example listening on ${port}`));
