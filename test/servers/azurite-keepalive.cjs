// Preloaded into Azurite (test/servers/azurite.sh). Azurite closes idle keep-alive connections
// after 5 s, far sooner than Azure does, and its --blobKeepAliveTimeout flag is read under another
// name and never applied. On a loaded machine a client whose event loop was busy for those 5 s then
// reuses a pooled connection that Azurite has already closed, and a test fails with ECONNRESET
// that the real service would not cause. Servers Azurite creates keep idle connections for at
// least two minutes, whatever Azurite sets afterwards.
'use strict';
const http = require('node:http');
const MIN_KEEP_ALIVE_MS = 120_000;
const createServer = http.createServer;
http.createServer = function createServerKeepingConnections(...args) {
  const server = createServer.apply(this, args);
  let keepAlive = MIN_KEEP_ALIVE_MS;
  Object.defineProperty(server, 'keepAliveTimeout', {
    configurable: true,
    get: () => keepAlive,
    set: (ms) => {
      keepAlive = Math.max(Number(ms) || 0, MIN_KEEP_ALIVE_MS);
    },
  });
  return server;
};
