export * from './primitives.js';
export * from './keyring.js';
