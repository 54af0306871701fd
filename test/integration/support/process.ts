// Servers the integration tests start on loopback (the operator, versitygw, Argo CD, Redis, git
// daemon): a free port, a log file per process under .cache/test-logs/, and a stop that waits for
// the process to be gone, since a process left running outlives the test run.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from './cluster.js';

export const LOG_DIR = join(REPO_ROOT, '.cache', 'test-logs');

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

export interface LoggedProcess {
  readonly pid: number;
  readonly logFile: string;
  /** Whether it is still running. */
  running: () => boolean;
  /** Throws, naming the log, when the process has exited: for readiness loops. */
  assertRunning: () => void;
  /** SIGKILL: the process gets no chance to clean up, as in a node crash. */
  kill: () => Promise<void>;
  /** SIGTERM and wait: a graceful shutdown. */
  stop: () => Promise<void>;
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((done) => {
        child.once('exit', () => {
          done();
        });
      });

/** Starts `command` with its output appended to .cache/test-logs/<logName>.log. */
export function startLogged(
  logName: string,
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): LoggedProcess {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `${logName}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', log, log],
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    pid: child.pid ?? 0,
    logFile,
    running,
    assertRunning: () => {
      if (!running())
        throw new Error(
          `${logName} exited with ${String(child.exitCode ?? child.signalCode)}; see ${logFile}`,
        );
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited(child);
    },
    stop: async () => {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}
