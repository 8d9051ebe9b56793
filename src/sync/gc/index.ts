export * from './policy.js';
export * from './lease.js';
export * from './mark.js';
export * from './sweep.js';
export * from './expiry.js';
export * from './remote.js';
