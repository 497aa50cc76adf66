import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { loadPolicy } from '../../policy/load.js';
import { runPolicyCheck } from './policy.js';

describe('policy check', () => {
  let dir: string;
  let stdout: string[];
  let stderr: MockInstance<typeof process.stderr.write>;
  const out = (text: string) => void stdout.push(text);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sandbox-install-policy-check-'));
    stdout = [];
    stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints each problem as a `path: message` line and exits 2', async () => {
    const file = path.join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ extends: 'default', rules: { 'network.dnz': 'fail', 'monitor.tampered': 'warn' }, onlyBinary: 'yes' }));
    expect(await runPolicyCheck(file, out)).toBe(2);
    expect(stdout.join('')).toBe(
      [
        `rules["network.dnz"]: unknown rule id or family 'network.dnz' (see the rule catalogue; a family is written family.*)`,
        'rules["monitor.tampered"]: monitor.tampered always fails: attacks on the tool and code that reaches every package cannot be relaxed',
        'onlyBinary: Invalid input: expected boolean, received string',
        '',
      ].join('\n'),
    );
    expect(stderr.mock.calls).toEqual([[`sandbox-install: ${file}: 3 problems\n`]]);
  });

  it('lists an expired suppression as a problem', async () => {
    const file = path.join(dir, 'old.json');
    await writeFile(file, JSON.stringify({ extends: 'default', suppressions: [{ rule: 'network.dns', package: 'six', reason: 'r', expires: '2000-01-01' }] }));
    expect(await runPolicyCheck(file, out)).toBe(2);
    expect(stdout.join('')).toBe('suppressions[0].expires: expired on 2000-01-01; this suppression of network.dns no longer applies\n');
    expect(stderr.mock.calls).toEqual([[`sandbox-install: ${file}: 1 problem\n`]]);
  });

  it('prints a valid policy resolved, as JSON, and exits 0', async () => {
    const file = path.join(dir, 'team.json');
    await writeFile(file, JSON.stringify({ $schema: './schema.json', extends: 'strict', rules: { 'fs.*': 'warn' }, writes: { allow: ['/data'] } }));
    expect(await runPolicyCheck(file, out)).toBe(0);
    expect(stdout).toHaveLength(1);
    expect(stdout[0]?.endsWith('}\n')).toBe(true);
    expect(JSON.parse(stdout[0]!)).toEqual(JSON.parse(JSON.stringify(await loadPolicy(file))));
    expect(JSON.parse(stdout[0]!)).toMatchObject({ name: 'team', onlyBinary: true, writes: { allow: ['/data'] }, rules: { 'fs.*': 'warn' } });
    expect(stderr).not.toHaveBeenCalled();
  });

  it('checks a preset by name', async () => {
    expect(await runPolicyCheck('default', out)).toBe(0);
    expect(JSON.parse(stdout.join(''))).toEqual(await loadPolicy('default'));
  });
});
