export * from './primitives.js';
export * from './sealer.js';
export * from './keyring.js';
