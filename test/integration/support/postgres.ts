// A PostgreSQL server on this machine (not in a pod), for the data mover's tests and benchmark: a
// real data directory, made and filled by PostgreSQL itself (initdb, pgbench), started on a unix
// socket of its own and stopped cleanly. It runs as the postgres user, which it requires.

import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A PostgreSQL data directory, made and filled by PostgreSQL itself, stopped cleanly. */
export class Postgres {
  readonly socket: string;
  constructor(
    readonly dataDir: string,
    readonly port: number,
  ) {
    this.socket = `${dataDir}-socket`;
  }

  private asPostgres(command: string, args: string[]): string {
    return execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, command), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  static init(dataDir: string, port: number): Postgres {
    const pg = new Postgres(dataDir, port);
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, uid('postgres'), uid('postgres'));
    pg.asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--no-sync']);
    return pg;
  }

  start(): void {
    mkdirSync(this.socket, { recursive: true });
    chownSync(this.socket, uid('postgres'), uid('postgres'));
    this.asPostgres('pg_ctl', [
      '-D',
      this.dataDir,
      '-w',
      '-l',
      // Where the postgres user may write; the test's work directory is removed after it.
      join(this.socket, 'server.log'),
      '-o',
      `-p ${this.port} -k ${this.socket} -c listen_addresses=''`,
      'start',
    ]);
  }

  stop(): void {
    this.asPostgres('pg_ctl', ['-D', this.dataDir, '-w', '-m', 'fast', 'stop']);
  }

  sql(query: string): string {
    return execFileSync(
      'psql',
      ['-h', this.socket, '-p', String(this.port), '-U', 'postgres', '-Atc', query],
      {
        encoding: 'utf8',
      },
    ).trim();
  }

  pgbench(args: string[]): void {
    execFileSync(
      'pgbench',
      ['-h', this.socket, '-p', String(this.port), '-U', 'postgres', ...args, 'postgres'],
      {
        stdio: 'ignore',
      },
    );
  }

  /** Row count and a checksum over every row of the pgbench tables. */
  fingerprint(): string {
    return this.sql(
      "SELECT count(*) || ':' || md5(string_agg(aid || ',' || bid || ',' || abalance, ';' ORDER BY aid)) FROM pgbench_accounts",
    );
  }
}

export function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}
