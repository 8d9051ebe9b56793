// A preload (`node --import <this> bin/mediagit.js ...`) that writes a timeline of the process's
// HTTP requests to $MEDIAGIT_TRACE_FILE as it exits: each request's start and end and each new
// connection's connect, in milliseconds since the process started (performance.timeOrigin), and
// the bytes the client received per 10 ms. Used by scripts/bench/link-trace.mjs; it changes
// nothing in the process it watches but the subscriptions themselves.
import diagnostics from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const out = process.env.MEDIAGIT_TRACE_FILE;
const now = () => Math.round(performance.now() * 10) / 10;
const requests = [];
const connections = [];
const received = new Map();
const open = new WeakMap();
const marks = { preload: now() };

diagnostics.subscribe('http.client.request.start', ({ request }) => {
  const entry = { method: request.method, path: request.path, start: now(), end: null };
  requests.push(entry);
  open.set(request, entry);
  request.once('response', (res) => {
    entry.head = now();
    entry.status = res.statusCode;
  });
  request.once('close', () => {
    if (entry.end === null) entry.end = now();
  });
});
diagnostics.subscribe('http.client.response.finish', ({ request }) => {
  const entry = open.get(request);
  if (entry) entry.end = now();
});
diagnostics.subscribe('net.client.socket', ({ socket }) => {
  const c = { asked: now(), connected: null };
  connections.push(c);
  socket.once('connect', () => (c.connected = now()));
  socket.on('data', (chunk) => {
    const slot = Math.floor(performance.now() / 10) * 10;
    received.set(slot, (received.get(slot) ?? 0) + chunk.length);
  });
});

process.once('exit', () => {
  marks.exit = now();
  if (!out) return;
  writeFileSync(
    out,
    JSON.stringify({
      marks,
      requests,
      connections,
      received: [...received].sort((a, b) => a[0] - b[0]),
    }),
  );
});
// Phase stamps a scratch build may leave (globalThis.__mgMark?.('name')); none in the sources.
globalThis.__mgMark = (name) => {
  marks[name] = now();
};
