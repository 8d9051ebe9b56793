export * from './remotes.js';
export * from './descriptor.js';
export * from './transfer.js';
export * from './push.js';
export * from './fetch.js';
