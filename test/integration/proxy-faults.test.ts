/**
 * The proxy-fault section of the Store contract (test/support/proxy-fault-contract.ts) against
 * every remote backend's test server: radosgw, Azurite, the GCS test server and `mediagit server`.
 */
import { after, test } from 'node:test';
import { PROXIED_BACKENDS } from '../support/proxied-backends.js';
import { injectedSummary, proxyFaultContract } from '../support/proxy-fault-contract.js';

for (const backend of PROXIED_BACKENDS)
  proxyFaultContract(backend.name, () => backend.prepare('faults'), { skip: backend.skip });

after(() => {
  for (const line of injectedSummary()) console.log(`faults injected: ${line}`);
});

test('the proxy-fault section ran against every backend that is up', () => undefined);
