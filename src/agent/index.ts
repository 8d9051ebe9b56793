export { agentDir, agentSocketPath, agentSupported } from './paths.js';
export {
  CLIENT_TIMEOUT_MS,
  agentLookupEnabled,
  agentStatus,
  cacheKey,
  ensureAgent,
  ensureAgentFolder,
  forgetAllKeys,
  forgetKeys,
  lookupCachedKey,
  type AgentStatus,
  type CachedKey,
} from './client.js';
export { MAX_TTL_MS, MIN_TTL_MS, type KeyFileDigest } from './protocol.js';
