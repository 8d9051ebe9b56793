// Loaded with `node --import` by server-trace.mjs: when TRACE_OUT is set, writes there at exit
// (or on SIGUSR2) the process's HTTP requests as client and as server (diagnostics_channel, ms
// since the process started), its GC pauses and each thread's CPU seconds.
import dc from 'node:diagnostics_channel';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { PerformanceObserver } from 'node:perf_hooks';
const out = process.env.TRACE_OUT;
if (out && isMainThread) {
  const ev = [];
  const t = () => Math.round(performance.now() * 10) / 10;
  ev.push({ t: t(), e: 'preload', hr: Number(process.hrtime.bigint() / 1000n) });
  let n = 0;
  const traced = new WeakMap();
  const gcs = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      gcs.push({
        t: Math.round(e.startTime),
        d: Math.round(e.duration * 10) / 10,
        k: e.detail?.kind,
      });
  }).observe({ entryTypes: ['gc'] });
  dc.subscribe('http.client.request.start', ({ request }) => {
    const id = ++n;
    ev.push({ t: t(), e: 'req', id, m: request.method, p: request.path });
    request.once('finish', () => ev.push({ t: t(), e: 'sent', id }));
    request.once('response', (res) => {
      ev.push({ t: t(), e: 'head', id, s: res.statusCode });
      res.once('end', () => ev.push({ t: t(), e: 'end', id }));
    });
  });
  dc.subscribe('http.server.request.start', ({ request }) => {
    const id = ++n;
    traced.set(request, id);
    ev.push({ t: t(), e: 'sreq', id, m: request.method, p: request.url });
    request.once('end', () => ev.push({ t: t(), e: 'sbody', id }));
  });
  dc.subscribe('http.server.response.finish', ({ request, response }) => {
    // `id`: the request's own, since several requests may share a method and URL (packs).
    ev.push({
      t: t(),
      e: 'sres',
      id: traced.get(request),
      m: request.method,
      p: request.url,
      s: response.statusCode,
    });
  });
  const dump = () => {
    const tck = 100;
    const threads = [];
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const s = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        threads.push({ tid, comm, u: Number(f[11]) / tck, s: Number(f[12]) / tck });
      } catch {
        // a thread that ended between the listing and the read
      }
    }
    const cu = process.cpuUsage();
    writeFileSync(
      out,
      JSON.stringify({
        gcs,
        origin: performance.timeOrigin,
        ev,
        threads,
        cpu: (cu.user + cu.system) / 1e6,
        exitT: t(),
      }),
    );
  };
  process.once('exit', dump);
  process.once('SIGUSR2', () => {
    dump();
  });
}
