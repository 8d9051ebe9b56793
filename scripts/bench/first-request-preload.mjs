// Loaded with `node --import` by first-request-ab.mjs: when FIRST_REQUEST_OUT is set, writes there
// the ms since the process started and the CPU ms it had used when its first HTTP request started.
const out = process.env.FIRST_REQUEST_OUT;
if (out) {
  const dc = process.getBuiltinModule('node:diagnostics_channel');
  const onRequest = () => {
    dc.unsubscribe('http.client.request.start', onRequest);
    const cpu = process.cpuUsage();
    process
      .getBuiltinModule('node:fs')
      .writeFileSync(
        out,
        JSON.stringify({ ms: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000 }),
      );
  };
  dc.subscribe('http.client.request.start', onRequest);
}
