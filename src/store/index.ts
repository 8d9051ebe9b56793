export * from './store.js';
export { LocalStore, type LocalStoreOptions } from './local/local-store.js';
