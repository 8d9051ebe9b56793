import { spawn } from 'node:child_process';
import { UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import {
  bisectLog,
  markBisect,
  resetBisect,
  resolveCommit,
  runBisect,
  startBisect,
  type BisectMark,
  type BisectStep,
  type Repository,
} from '../repo/index.js';
import { openRepository, type CommandIo } from './context.js';

export async function runBisectCommand(io: CommandIo, sub: string, args: string[]): Promise<void> {
  const repo = await openRepository(io);
  const progress = io.progress();
  const resolveAll = async (revs: string[]): Promise<Oid[]> =>
    Promise.all(revs.map((r) => resolveCommit(repo, r)));
  switch (sub) {
    case 'start': {
      const [bad, ...good] = await resolveAll(args);
      return report(io, repo, await startBisect(repo, bad ?? null, good, { progress }));
    }
    case 'good':
    case 'bad':
    case 'skip':
    case 'new':
    case 'old': {
      const mark: BisectMark = sub === 'new' ? 'bad' : sub === 'old' ? 'good' : sub;
      if (mark === 'bad' && args.length > 1) throw new UsageError('bisect bad takes one commit');
      return report(io, repo, await markBisect(repo, mark, await resolveAll(args), { progress }));
    }
    case 'reset': {
      if (args.length > 0) throw new UsageError('bisect reset takes no arguments');
      if (!(await resetBisect(repo, { progress }))) io.out('Not bisecting.');
      return;
    }
    case 'log':
      for (const line of await bisectLog(repo)) io.out(line);
      return;
    case 'run': {
      const [command, ...commandArgs] = args;
      if (!command) throw new UsageError('bisect run needs a command to run');
      const step = await runBisect(
        repo,
        async () => {
          io.out(`running ${[command, ...commandArgs].join(' ')}`);
          return runScript(repo.root, command, commandArgs);
        },
        async (_commit, _mark, next) => {
          if (next.kind === 'testing') await report(io, repo, next);
        },
        { progress },
      );
      await report(io, repo, step);
      if (step.kind === 'found') io.out('bisect found first bad commit');
      return;
    }
    default:
      throw new UsageError(`unknown bisect subcommand '${sub}'`, {
        hint: 'use start, good, bad, skip, reset, log or run',
      });
  }
}

async function report(io: CommandIo, repo: Repository, step: BisectStep): Promise<void> {
  const subject = async (oid: Oid): Promise<string> =>
    (await repo.odb.readCommit(oid)).message.split('\n')[0] ?? '';
  switch (step.kind) {
    case 'waiting':
      io.out(
        step.need === 'both'
          ? 'status: waiting for both good and bad commits'
          : `status: waiting for a ${step.need} commit`,
      );
      return;
    case 'testing':
      io.out(
        `Bisecting: ${step.left} ${step.left === 1 ? 'revision' : 'revisions'} left to test after this (roughly ${step.steps} ${step.steps === 1 ? 'step' : 'steps'})`,
      );
      io.out(`[${step.commit}] ${await subject(step.commit)}`);
      return;
    case 'found': {
      const commit = await repo.odb.readCommit(step.commit);
      io.out(`${step.commit} is the first bad commit`);
      io.out(`commit ${step.commit}`);
      io.out(`Author: ${commit.author.name} <${commit.author.email}>`);
      io.out('');
      for (const line of commit.message.trimEnd().split('\n')) io.out(`    ${line}`);
      return;
    }
    case 'only-skipped':
      io.out("There are only 'skip'ped commits left to test.");
      io.out('The first bad commit could be any of:');
      for (const oid of step.candidates) io.out(`${shortOid(oid)} ${await subject(oid)}`);
      throw new UsageError('bisect cannot decide: only skipped commits are left');
  }
}

/** Runs the user's test command in the working tree's root; resolves to its exit code (signals: 128+n). */
function runScript(cwd: string, command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (err) =>
      reject(new UsageError(`bisect run could not start '${command}': ${err.message}`)),
    );
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 128)));
  });
}
