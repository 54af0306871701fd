// There is no Docker engine here to build the image, so its properties are checked from the
// Dockerfile itself and by dockerfilelint: multi-stage, Node 24 LTS at run time, production dependencies only, a
// non-root user matching the Helm chart, and an entry point that the build really produces.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { load } from 'js-yaml';

const run = promisify(execFile);
const dockerfile = readFileSync('Dockerfile', 'utf8');
const instructions = dockerfile
  .split('\n')
  .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
  .map((line) => {
    const [keyword = '', ...rest] = line.trim().split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
  });
const stages = instructions.filter((i) => i.keyword === 'FROM');
const finalStage = instructions.slice(instructions.findLastIndex((i) => i.keyword === 'FROM'));

describe('Dockerfile', () => {
  it('builds in one stage and runs from another, on Node 24', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[stages.length - 1]?.args).toMatch(/^node:24[-.]/);
  });

  it('runs as the non-root user the Helm chart expects', () => {
    const user = finalStage.find((i) => i.keyword === 'USER')?.args ?? '';
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    const values = readFileSync('charts/snapback/templates/deployment.yaml', 'utf8');
    expect(values).toContain(`runAsUser: ${user.split(':')[0] ?? ''}`);
  });

  it('ships production dependencies only, and the compiled entry point', () => {
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    const entrypoint = finalStage.find((i) => i.keyword === 'ENTRYPOINT')?.args ?? '';
    const command = JSON.parse(entrypoint) as string[];
    expect(command[0]).toBe('node');
    const packageJson = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } };
    expect(packageJson.scripts.start).toBe(command.join(' '));
    const build = load(readFileSync('tsconfig.json', 'utf8')) as { compilerOptions: { outDir: string } };
    expect(command[1]?.startsWith(`${build.compilerOptions.outDir}/`)).toBe(true);
  });

  it('passes dockerfilelint', async () => {
    const { stdout } = await run('node_modules/.bin/dockerfilelint', ['-o', 'json', 'Dockerfile']);
    const report = JSON.parse(stdout) as { totalIssues: number; files: { issues: unknown[] }[] };
    expect(report.files[0]?.issues).toEqual([]);
    expect(report.totalIssues).toBe(0);
  });

  it('keeps the build context small', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n');
    for (const path of ['.git', '.cache', 'node_modules', 'test', 'dist']) expect(ignored).toContain(path);
  });
});
