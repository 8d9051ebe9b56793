export * from './policy.js';
export * from './lease.js';
export * from './mark.js';
export * from './sweep.js';
