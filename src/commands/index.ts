/**
 * Every command's registration, in the order `mediagit --help` lists them.
 */
import type { Command } from 'commander';
import type { Registration } from './registration.js';
import { registerInit } from './init.command.js';
import { registerAdd } from './add.command.js';
import { registerRmMv } from './rm-mv.command.js';
import { registerStatus } from './status.command.js';
import { registerCommit } from './commit.command.js';
import { registerLog } from './log.command.js';
import { registerShow } from './show.command.js';
import { registerDiff } from './diff.command.js';
import { registerCheckout } from './checkout.command.js';
import { registerBranch } from './branch.command.js';
import { registerTag } from './tag.command.js';
import { registerReset } from './reset.command.js';
import { registerMerge } from './merge.command.js';
import { registerReflog } from './reflog.command.js';
import { registerReplay } from './replay.command.js';
import { registerStash } from './stash.command.js';
import { registerBisect } from './bisect.command.js';
import { registerFsck } from './fsck.command.js';
import { registerGc } from './gc.command.js';
import { registerStats } from './stats.command.js';
import { registerRemote } from './remote.command.js';
import { registerPush } from './push.command.js';
import { registerFetch } from './fetch.command.js';
import { registerPull } from './pull.command.js';
import { registerClone } from './clone.command.js';
import { registerImport } from './import.command.js';
import { registerLogin } from './login.command.js';
import { registerLock } from './lock.command.js';
import { registerServer } from './server.command.js';
import { registerKey } from './key.command.js';
import { registerConfig } from './config.command.js';
import { registerCompletion } from './completion.command.js';
import { registerSparseCheckout } from './sparse-checkout.command.js';
import { registerPrune } from './prune.command.js';

export type { Registration } from './registration.js';

export const registrations: readonly ((program: Command, ctx: Registration) => void)[] = [
  registerInit,
  registerAdd,
  registerRmMv,
  registerStatus,
  registerCommit,
  registerLog,
  registerShow,
  registerDiff,
  registerCheckout,
  registerBranch,
  registerTag,
  registerReset,
  registerMerge,
  registerReflog,
  registerReplay,
  registerStash,
  registerBisect,
  registerFsck,
  registerGc,
  registerPrune,
  registerStats,
  registerRemote,
  registerPush,
  registerFetch,
  registerPull,
  registerClone,
  registerImport,
  registerSparseCheckout,
  registerLogin,
  registerLock,
  registerServer,
  registerKey,
  registerConfig,
  registerCompletion,
];
