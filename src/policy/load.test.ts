import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { loadPolicy, PRESETS } from './load.js';

/** Run `fn` in a fresh temp dir holding `files` (name → JSON value, or raw text); removed afterwards. */
async function withPolicies<T>(files: Record<string, unknown>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-install-policy-test-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      await writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
    }
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The InputError loadPolicy rejects with, to check its code and message. */
async function rejection(promise: Promise<unknown>): Promise<InputError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  return error as InputError;
}

const DEFAULT_FAIL_ON = [
  'integrity.*',
  'lock.*',
  'network.*',
  'fs.write-outside-target',
  'fs.sensitive-read',
  'fs.target-tamper',
  'process.exec',
  'process.lingering',
  'static.*',
  'monitor.*',
  'resource.*',
  'policy.*',
  'export.*',
];

describe('loadPolicy: presets', () => {
  it('names exactly three presets', () => {
    expect(PRESETS).toEqual(['default', 'strict', 'investigate']);
  });

  it('resolves default', async () => {
    const policy = await loadPolicy('default');
    expect(policy).toMatchObject({
      name: 'default',
      failOn: DEFAULT_FAIL_ON,
      warnOnly: ['static.autoload-entry-point'],
      build: { allow: ['setuptools', 'wheel'] },
      onlyBinary: false,
      allowLockIndexUrl: false,
      knownGoodPth: [{ name: 'distutils-precedence.pth', sha256: '2638ce9e2500e572a5e0de7faed6661eb569d1b696fcba07b0dd223da5f5d224' }],
      severities: {},
      packages: { allow: [], deny: [] },
      export: true,
    });
    expect(policy.process.execWatch).toEqual(expect.arrayContaining(['sh', 'bash', 'curl', 'wget', 'nc', 'ssh', 'openssl']));
  });

  it('resolves strict as default, binary-only, with no unhashed build requirements', async () => {
    const [strict, base] = await Promise.all([loadPolicy('strict'), loadPolicy('default')]);
    expect(strict).toEqual({ ...base, name: 'strict', onlyBinary: true, build: { allow: [] } });
  });

  it('resolves investigate as default that never exports', async () => {
    const [investigate, base] = await Promise.all([loadPolicy('investigate'), loadPolicy('default')]);
    expect(investigate).toEqual({ ...base, name: 'investigate', export: false });
  });
});

describe('loadPolicy: user files', () => {
  it('extends a preset: own keys win, the rest is inherited, package names are normalised', async () => {
    await withPolicies(
      {
        'team.json': {
          $comment: 'ours',
          extends: 'default',
          name: 'team',
          failOn: ['network.*', 'process.exec'],
          severities: { 'network.dns': 'info' },
          packages: { allow: ['Foo_Bar'], deny: ['Evil.Pkg'] },
          build: { allow: ['Setuptools_SCM'] },
        },
      },
      async (dir) => {
        const [policy, base] = await Promise.all([loadPolicy(path.join(dir, 'team.json')), loadPolicy('default')]);
        expect(policy).toEqual({
          ...base,
          name: 'team',
          failOn: ['network.*', 'process.exec'],
          severities: { 'network.dns': 'info' },
          packages: { allow: ['foo-bar'], deny: ['evil-pkg'] },
          build: { allow: ['setuptools-scm'] },
        });
      },
    );
  });

  it('defaults what packages leave out, and names a policy with no name and no base after its file', async () => {
    await withPolicies({ 'mine.json': { extends: 'strict', packages: { deny: ['x'] } } }, async (dir) => {
      const policy = await loadPolicy(path.join(dir, 'mine.json'));
      expect(policy.packages).toEqual({ allow: [], deny: ['x'] });
      expect(policy.onlyBinary).toBe(true);
      // It extends strict but is not strict: reports must not call it that.
      expect(policy.name).toBe('mine');
    });
    await withPolicies({ 'standalone.json': { failOn: ['network.*'], build: { allow: [] }, process: { execWatch: ['sh'] } } }, async (dir) => {
      expect(await loadPolicy(path.join(dir, 'standalone.json'))).toEqual({
        name: 'standalone',
        failOn: ['network.*'],
        warnOnly: [],
        build: { allow: [] },
        onlyBinary: false,
        allowLockIndexUrl: false,
        knownGoodPth: [],
        severities: {},
        packages: { allow: [], deny: [] },
        process: { execWatch: ['sh'] },
        export: true,
      });
    });
  });

  it('resolves a relative extends against the extending file, and merges severities over the base', async () => {
    await withPolicies(
      {
        'base.json': {
          name: 'base',
          failOn: ['static.*'],
          build: { allow: [] },
          process: { execWatch: ['curl'] },
          severities: { 'network.*': 'low', 'static.pth-exec': 'critical' },
        },
        'child.json': { extends: './base.json', name: 'child', severities: { 'static.pth-exec': 'medium', 'network.dns': 'info' } },
      },
      async (dir) => {
        const policy = await loadPolicy(path.join(dir, 'child.json'));
        expect(policy).toMatchObject({
          name: 'child',
          failOn: ['static.*'],
          process: { execWatch: ['curl'] },
          severities: { 'network.*': 'low', 'static.pth-exec': 'medium', 'network.dns': 'info' },
        });
      },
    );
  });

  it('refuses a policy that leaves failOn, build or process unset all the way down', async () => {
    await withPolicies({ 'bare.json': { name: 'bare', failOn: ['network.*'] } }, async (dir) => {
      const error = await rejection(loadPolicy(path.join(dir, 'bare.json')));
      expect(error.code).toBe('policy.invalid');
      expect(error.message).toBe(`${path.join(dir, 'bare.json')}: failOn, build and process must be set here or in the policy it extends`);
    });
  });
});

describe('loadPolicy: errors', () => {
  it('reports a missing file as unreadable', async () => {
    await withPolicies({}, async (dir) => {
      const file = path.join(dir, 'nope.json');
      const error = await rejection(loadPolicy(file));
      expect(error.code).toBe('policy.unreadable');
      expect(error.message).toMatch(new RegExp(`^cannot read policy ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
    });
  });

  it('reports text that is not JSON', async () => {
    await withPolicies({ 'broken.json': '{ "extends": "default", ' }, async (dir) => {
      const error = await rejection(loadPolicy(path.join(dir, 'broken.json')));
      expect(error.code).toBe('policy.invalid');
      expect(error.message.startsWith(`${path.join(dir, 'broken.json')}: not JSON: `)).toBe(true);
    });
  });

  it('lists every schema issue as `path: message`', async () => {
    await withPolicies(
      {
        'bad.json': {
          extends: 'default',
          failOn: ['network.*', 'network.dsn'],
          onlyBinary: 'yes',
          severities: { 'fs.write-outside-target': 'severe' },
          knownGoodPth: [{ name: 'a.pth', sha256: 'NOTHEX' }],
          surprise: 1,
        },
      },
      async (dir) => {
        const file = path.join(dir, 'bad.json');
        const error = await rejection(loadPolicy(file));
        expect(error.code).toBe('policy.invalid');
        const [head, ...issues] = error.message.split('\n  ');
        expect(head).toBe(`${file}: invalid policy`);
        expect(issues).toHaveLength(5);
        expect(issues).toEqual(
          expect.arrayContaining([
            '(root): Unrecognized key: "surprise"',
            'failOn.1: not a known rule id or family wildcard (family.*)',
            expect.stringMatching(/^onlyBinary: .*boolean/),
            expect.stringMatching(/^severities\.fs\.write-outside-target: /),
            expect.stringMatching(/^knownGoodPth\.0\.sha256: /),
          ]),
        );
      },
    );
  });

  it('rejects an unknown rule in failOn by its position', async () => {
    await withPolicies({ 'typo.json': { extends: 'default', failOn: ['network.dns', 'proces.exec'] } }, async (dir) => {
      const error = await rejection(loadPolicy(path.join(dir, 'typo.json')));
      expect(error.message).toBe(`${path.join(dir, 'typo.json')}: invalid policy\n  failOn.1: not a known rule id or family wildcard (family.*)`);
    });
  });

  it('reports an invalid base with the base file name', async () => {
    await withPolicies({ 'base.json': { failOn: 'network.*' }, 'child.json': { extends: 'base.json' } }, async (dir) => {
      const error = await rejection(loadPolicy(path.join(dir, 'child.json')));
      expect(error.message.startsWith(`${path.join(dir, 'base.json')}: invalid policy\n  failOn: `)).toBe(true);
    });
  });

  it('refuses an extends cycle, showing the chain', async () => {
    await withPolicies({ 'a.json': { extends: './b.json' }, 'b.json': { extends: 'a.json' } }, async (dir) => {
      const [a, b] = [path.join(dir, 'a.json'), path.join(dir, 'b.json')];
      const error = await rejection(loadPolicy(a));
      expect(error.code).toBe('policy.invalid');
      expect(error.message).toBe(`policy extends itself: ${a} -> ${b} -> ${a}`);
    });
  });

  it('refuses a policy that extends itself', async () => {
    await withPolicies({ 'self.json': { extends: 'self.json' } }, async (dir) => {
      const self = path.join(dir, 'self.json');
      expect((await rejection(loadPolicy(self))).message).toBe(`policy extends itself: ${self} -> ${self}`);
    });
  });
});
