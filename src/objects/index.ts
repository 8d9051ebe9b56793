export * from './oid.js';
export * from './kinds.js';
export * from './names.js';
export * from './manifest.js';
export * from './tree.js';
export * from './commit.js';
export * from './envelope.js';
export * from './database.js';
