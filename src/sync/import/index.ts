export * from './git-lfs.js';
