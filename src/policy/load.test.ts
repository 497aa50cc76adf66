import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { finding } from '../core/finding.js';
import { InputError } from '../errors.js';
import { evaluate } from './evaluate.js';
import { checkPolicy, loadPolicy, POLICIES_DIR, PRESETS, todayUtc } from './load.js';
import { actionFor } from './schema.js';

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

/** The problems `policy check` lists for one policy file extending default, checked on 2025-01-01. */
async function problemsOf(content: Record<string, unknown>): Promise<Array<[string, string]>> {
  return withPolicies({ 'p.json': { extends: 'default', ...content } }, async (dir) => {
    const { policy, problems } = await checkPolicy(path.join(dir, 'p.json'), { today: '2025-01-01' });
    if (problems.length > 0) expect(policy).toBeNull();
    return problems.map((p): [string, string] => [p.path, p.message]);
  });
}

const DEFAULT_RULES = {
  'integrity.*': 'fail',
  'lock.*': 'fail',
  'network.*': 'fail',
  'fs.write-outside-target': 'fail',
  'fs.sensitive-read': 'fail',
  'fs.target-tamper': 'fail',
  'process.exec': 'fail',
  'process.lingering': 'fail',
  'static.*': 'fail',
  'monitor.*': 'fail',
  'resource.*': 'fail',
  'policy.*': 'fail',
  'export.*': 'fail',
  'static.autoload-entry-point': 'warn',
  'static.inert-source': 'warn',
  'static.stdlib-backport': 'warn',
  'policy.suppression-expired': 'warn',
};

const DISTUTILS_PTH = { name: 'distutils-precedence.pth', sha256: '2638ce9e2500e572a5e0de7faed6661eb569d1b696fcba07b0dd223da5f5d224' };
/** The reviewed allowances the default policy reads (policies/known-good.json). */
const KNOWN_GOOD = JSON.parse(readFileSync(new URL('../../policies/known-good.json', import.meta.url), 'utf8')) as {
  pth: Array<Record<string, unknown>>;
  scripts: Array<Record<string, unknown>>;
  stdlib: Array<Record<string, unknown>>;
};
const UNKNOWN = (id: string) => `unknown rule id or family '${id}' (see the rule catalogue; a family is written family.*)`;

describe('loadPolicy: presets', () => {
  it('names exactly three presets', () => {
    expect(PRESETS).toEqual(['default', 'strict', 'investigate']);
  });

  it('resolves default', async () => {
    expect(await loadPolicy('default')).toEqual({
      name: 'default',
      rules: DEFAULT_RULES,
      build: { allow: ['setuptools', 'wheel', 'packaging'], pins: [] },
      onlyBinary: false,
      allowLockIndexUrl: false,
      knownGoodPth: KNOWN_GOOD.pth,
      knownGoodScripts: KNOWN_GOOD.scripts,
      knownGoodStdlib: KNOWN_GOOD.stdlib,
      severities: {},
      packages: { allow: [], deny: [] },
      process: { execWatch: expect.arrayContaining(['sh', 'bash', 'curl', 'wget', 'nc', 'ssh', 'openssl']) },
      writes: { allow: [] },
      limits: {},
      suppressions: [],
      expiredSuppressions: [],
      export: true,
    });
  });

  it('resolves strict as default, binary-only, with no unhashed build requirements', async () => {
    const [strict, base] = await Promise.all([loadPolicy('strict'), loadPolicy('default')]);
    expect(strict).toEqual({ ...base, name: 'strict', onlyBinary: true, build: { allow: [], pins: [] } });
  });

  it('resolves investigate as default that never exports', async () => {
    const [investigate, base] = await Promise.all([loadPolicy('investigate'), loadPolicy('default')]);
    expect(investigate).toEqual({ ...base, name: 'investigate', export: false });
  });

  it.each(PRESETS)('checks %s with no problems, by name and by path', async (preset) => {
    const expected = await loadPolicy(preset);
    expect(await checkPolicy(preset)).toEqual({ policy: expected, problems: [] });
    expect(await checkPolicy(path.join(POLICIES_DIR, `${preset}.json`))).toEqual({ policy: expected, problems: [] });
  });
});

describe('loadPolicy: user files', () => {
  it('extends a preset: own keys win, own rules merge over the base, package names are normalised', async () => {
    await withPolicies(
      {
        'team.json': {
          $schema: '../node_modules/sandbox-install/policies/schema.json',
          $comment: 'ours',
          extends: 'default',
          name: 'team',
          rules: { 'network.dns': 'ignore', 'process.exec': 'warn' },
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
          rules: { ...DEFAULT_RULES, 'network.dns': 'ignore', 'process.exec': 'warn' },
          severities: { 'network.dns': 'info' },
          packages: { allow: ['foo-bar'], deny: ['evil-pkg'] },
          build: { allow: ['setuptools-scm'], pins: [] },
        });
      },
    );
  });

  it('splits build.allow into pinned build requirements and the unpinned opt-in; a name pinned is not also unpinned', async () => {
    const sha = 'ab'.repeat(32);
    await withPolicies(
      {
        'pinned.json': {
          extends: 'default',
          build: { allow: ['Wheel', { name: 'Setuptools', version: '75.1.0', sha256: [sha] }, 'setuptools', 'wheel'] },
        },
        'bad.json': { extends: 'default', build: { allow: [{ name: 'setuptools', version: '75.1.0', sha256: ['AB'.repeat(32)] }] } },
      },
      async (dir) => {
        const policy = await loadPolicy(path.join(dir, 'pinned.json'));
        expect(policy.build).toEqual({ allow: ['wheel'], pins: [{ name: 'setuptools', version: '75.1.0', sha256: [sha] }] });
        await expect(loadPolicy(path.join(dir, 'bad.json'))).rejects.toThrow('build.allow[0].sha256[0]: not a lowercase hex sha256');
      },
    );
  });

  it("lets a child's family wildcard override the base's entries it covers, and leaves other families alone", async () => {
    await withPolicies({ 'relaxed.json': { extends: 'default', rules: { 'fs.*': 'warn' } } }, async (dir) => {
      const policy = await loadPolicy(path.join(dir, 'relaxed.json'));
      const { 'fs.write-outside-target': _w, 'fs.sensitive-read': _r, 'fs.target-tamper': _t, ...rest } = DEFAULT_RULES;
      expect(policy.rules).toEqual({ ...rest, 'fs.*': 'warn' });
      expect(actionFor(policy, 'fs.write-outside-target')).toBe('warn');
      expect(actionFor(policy, 'fs.sensitive-read')).toBe('warn');
      expect(actionFor(policy, 'network.dns')).toBe('fail');
      // fs.target-tamper is never relaxed: the wildcard reaches it in the rules but not in the verdict.
      const write = finding('fs.write-outside-target', 'high', 'added /etc/x', { path: '/etc/x' }, 'six');
      const tamper = finding('fs.target-tamper', 'high', 'openat x.pth', { path: '/opt/target/x.pth' }, 'six');
      expect(evaluate({ findings: [write, tamper], packages: ['six'], installSucceeded: true }, policy).findings).toEqual([
        { ...write, action: 'warn', failing: false },
        { ...tamper, action: 'fail', failing: true },
      ]);
    });
  });

  it("keeps the base's family when a child names one of its rules", async () => {
    await withPolicies({ 'one.json': { extends: 'default', rules: { 'network.dns': 'warn', 'static.*': 'fail' } } }, async (dir) => {
      const policy = await loadPolicy(path.join(dir, 'one.json'));
      const { 'static.autoload-entry-point': _autoload, 'static.inert-source': _inert, 'static.stdlib-backport': _backport, ...rest } = DEFAULT_RULES;
      expect(policy.rules).toEqual({ ...rest, 'network.dns': 'warn' });
      expect([actionFor(policy, 'network.dns'), actionFor(policy, 'network.connect'), actionFor(policy, 'static.autoload-entry-point')]).toEqual([
        'warn',
        'fail',
        'fail',
      ]);
    });
  });

  it('defaults what packages leave out, and names a policy with no name and no base after its file', async () => {
    await withPolicies({ 'mine.json': { extends: 'strict', packages: { deny: ['x'] } } }, async (dir) => {
      const policy = await loadPolicy(path.join(dir, 'mine.json'));
      expect(policy.packages).toEqual({ allow: [], deny: ['x'] });
      expect(policy.onlyBinary).toBe(true);
      // It extends strict but is not strict: reports must not call it that.
      expect(policy.name).toBe('mine');
    });
    await withPolicies({ 'standalone.json': { rules: { 'network.*': 'fail' }, build: { allow: [] }, process: { execWatch: ['sh'] } } }, async (dir) => {
      expect(await loadPolicy(path.join(dir, 'standalone.json'))).toEqual({
        name: 'standalone',
        rules: { 'network.*': 'fail' },
        build: { allow: [], pins: [] },
        onlyBinary: false,
        allowLockIndexUrl: false,
        knownGoodPth: [],
        knownGoodScripts: [],
        knownGoodStdlib: [],
        severities: {},
        packages: { allow: [], deny: [] },
        process: { execWatch: ['sh'] },
        writes: { allow: [] },
        limits: {},
        suppressions: [],
        expiredSuppressions: [],
        export: true,
      });
    });
  });

  it('resolves a relative extends against the extending file, and merges rules, severities, writes, limits and knownGoodPth over the base', async () => {
    const extra = { name: 'x.pth', sha256: 'a'.repeat(64) };
    await withPolicies(
      {
        'base.json': {
          name: 'base',
          rules: { 'static.*': 'fail' },
          build: { allow: [] },
          process: { execWatch: ['curl'] },
          severities: { 'network.*': 'low', 'static.pth-exec': 'critical' },
          writes: { allow: ['/data'] },
          limits: { timeoutSeconds: 600, memoryMb: 2048 },
          knownGoodPth: [DISTUTILS_PTH],
        },
        'child.json': {
          extends: './base.json',
          name: 'child',
          rules: { 'network.dns': 'warn' },
          severities: { 'static.pth-exec': 'medium', 'network.dns': 'info' },
          writes: { allow: ['/srv/cache', '/data'] },
          limits: { memoryMb: 4096 },
          knownGoodPth: [DISTUTILS_PTH, extra],
        },
      },
      async (dir) => {
        expect(await loadPolicy(path.join(dir, 'child.json'))).toEqual({
          name: 'child',
          rules: { 'static.*': 'fail', 'network.dns': 'warn' },
          build: { allow: [], pins: [] },
          onlyBinary: false,
          allowLockIndexUrl: false,
          knownGoodPth: [DISTUTILS_PTH, extra],
          knownGoodScripts: [],
          knownGoodStdlib: [],
          severities: { 'network.*': 'low', 'static.pth-exec': 'medium', 'network.dns': 'info' },
          packages: { allow: [], deny: [] },
          process: { execWatch: ['curl'] },
          writes: { allow: ['/data', '/srv/cache'] },
          limits: { timeoutSeconds: 600, memoryMb: 4096 },
          suppressions: [],
          expiredSuppressions: [],
          export: true,
        });
      },
    );
  });

  it("extends the default's known-good lists rather than replacing them, from inline entries and from files of its own", async () => {
    const extra = { name: 'x.pth', sha256: 'b'.repeat(64), distribution: 'x' };
    const fromFile = { name: 'y.pth', sha256: 'c'.repeat(64), distribution: 'y', imports: [{ path: 'y_boot.py', sha256: 'd'.repeat(64) }] };
    const tool = { distribution: 'mytool', scripts: ['git'], reason: 'our own git wrapper' };
    await withPolicies(
      {
        'pth.json': { extends: 'default', knownGood: ['./mine.json'], knownGoodPth: [extra] },
        'mine.json': { pth: [fromFile], scripts: [tool] },
      },
      async (dir) => {
        const policy = await loadPolicy(path.join(dir, 'pth.json'));
        expect(policy.knownGoodPth).toEqual([...KNOWN_GOOD.pth, fromFile, extra]);
        expect(policy.knownGoodScripts).toEqual([...KNOWN_GOOD.scripts, tool]);
      },
    );
  });

  it('refuses a known-good file that is not one, naming the policy, the file and the field', async () => {
    await withPolicies(
      {
        'pth.json': { extends: 'default', knownGood: ['./mine.json'] },
        'mine.json': { pth: [{ name: 'y.pth', sha256: 'NOTHEX', imports: [{ path: '../x.py', sha256: 'e'.repeat(64) }] }] },
      },
      async (dir) => {
        const error = await loadPolicy(path.join(dir, 'pth.json')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InputError);
        expect((error as InputError).message).toContain('knownGood[0] (mine.json) pth[0].sha256: not a lowercase hex sha256');
        expect((error as InputError).message).toContain('knownGood[0] (mine.json) pth[0].imports[0].path: not a path inside site-packages');
      },
    );
    await withPolicies({ 'pth.json': { extends: 'default', knownGood: ['./missing.json'] } }, async (dir) => {
      expect(String(await loadPolicy(path.join(dir, 'pth.json')).catch((e: unknown) => e))).toMatch(/knownGood\[0\]: cannot read .*missing\.json as JSON/);
    });
  });

  it('refuses a policy that leaves rules, build or process unset all the way down', async () => {
    await withPolicies({ 'bare.json': { name: 'bare', rules: { 'network.*': 'fail' } } }, async (dir) => {
      const error = await rejection(loadPolicy(path.join(dir, 'bare.json')));
      expect(error.code).toBe('policy.invalid');
      expect(error.message).toBe(`${path.join(dir, 'bare.json')}: rules, build and process must be set here or in the policy it extends`);
    });
  });
});

describe('loadPolicy: suppressions', () => {
  const dns = (expires?: string) => ({
    rule: 'network.dns',
    package: 'Evil_Pkg',
    evidence: { name: 'x.test' },
    reason: 'on purpose',
    ...(expires ? { expires } : {}),
  });

  it('normalises the package, defaults evidence, and splits off those past their day (UTC)', async () => {
    await withPolicies(
      {
        'base.json': { extends: 'default', suppressions: [dns('2024-06-30')] },
        'child.json': {
          extends: './base.json',
          suppressions: [dns('2024-07-01'), dns(), { rule: 'process.exec', package: null, reason: 'our build runs sh' }],
        },
      },
      async (dir) => {
        const policy = await loadPolicy(path.join(dir, 'child.json'), { today: '2024-07-01' });
        const resolved = (expires?: string) => ({ ...dns(expires), package: 'evil-pkg' });
        expect(policy.suppressions).toEqual([
          resolved('2024-07-01'),
          resolved(),
          { rule: 'process.exec', package: null, evidence: {}, reason: 'our build runs sh' },
        ]);
        expect(policy.expiredSuppressions).toEqual([resolved('2024-06-30')]);
        // The same base read a day earlier: nothing has expired yet.
        const before = await loadPolicy(path.join(dir, 'child.json'), { today: '2024-06-30' });
        expect(before.suppressions.map((s) => s.expires)).toEqual(['2024-06-30', '2024-07-01', undefined, undefined]);
        expect(before.expiredSuppressions).toEqual([]);
      },
    );
  });

  it('reads today in UTC', () => {
    expect(todayUtc(new Date('2024-03-05T23:59:59Z'))).toBe('2024-03-05');
    expect(todayUtc(new Date('2024-03-05T23:30:00-02:00'))).toBe('2024-03-06');
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
          rules: { 'network.*': 'fail', 'network.dsn': 'fail' },
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
        expect(issues.sort()).toEqual(
          [
            "(root): unknown key 'surprise'",
            `rules["network.dsn"]: ${UNKNOWN('network.dsn')}`,
            'onlyBinary: Invalid input: expected boolean, received string',
            'severities["fs.write-outside-target"]: Invalid option: expected one of "info"|"low"|"medium"|"high"|"critical"',
            'knownGoodPth[0].sha256: not a lowercase hex sha256',
          ].sort(),
        );
      },
    );
  });

  it('rejects an unknown rule in rules at its own key', async () => {
    await withPolicies({ 'typo.json': { extends: 'default', rules: { 'network.dns': 'fail', 'proces.exec': 'fail' } } }, async (dir) => {
      const error = await rejection(loadPolicy(path.join(dir, 'typo.json')));
      expect(error.message).toBe(`${path.join(dir, 'typo.json')}: invalid policy\n  rules["proces.exec"]: ${UNKNOWN('proces.exec')}`);
    });
  });

  it('reports an invalid base with the base file name', async () => {
    await withPolicies({ 'base.json': { rules: 'network.*' }, 'child.json': { extends: 'base.json' } }, async (dir) => {
      const error = await rejection(loadPolicy(path.join(dir, 'child.json')));
      expect(error.message).toBe(`${path.join(dir, 'base.json')}: invalid policy\n  rules: Invalid input: expected record, received string`);
    });
  });

  it('says an extends that is neither a preset nor a readable file is exactly that', async () => {
    await withPolicies({ 'lost.json': { extends: 'defualt' } }, async (dir) => {
      const file = path.join(dir, 'lost.json');
      const error = await rejection(loadPolicy(file));
      expect(error.code).toBe('policy.invalid');
      expect(error.message).toBe(`${file}: invalid policy\n  extends: 'defualt' is neither a preset (default, strict, investigate) nor a readable policy file`);
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

describe('checkPolicy: the schema, problem by problem', () => {
  it('accepts $schema and $comment', async () => {
    expect(await problemsOf({ $schema: './schema.json', $comment: 'x' })).toEqual([]);
  });

  it('names a value of the wrong type', async () => {
    expect(await problemsOf({ onlyBinary: 'yes' })).toEqual([['onlyBinary', 'Invalid input: expected boolean, received string']]);
  });

  it('names an unknown rule id in rules, and an unknown action', async () => {
    expect(await problemsOf({ rules: { 'network.dnz': 'fail' } })).toEqual([['rules["network.dnz"]', UNKNOWN('network.dnz')]]);
    expect(await problemsOf({ rules: { 'network.dns': 'block' } })).toEqual([
      ['rules["network.dns"]', 'Invalid option: expected one of "fail"|"warn"|"ignore"'],
    ]);
  });

  it('refuses to relax a rule that always fails, by its exact id', async () => {
    expect(await problemsOf({ rules: { 'monitor.tampered': 'warn', 'fs.target-tamper': 'ignore', 'static.pth-exec': 'fail' } })).toEqual([
      ['rules["monitor.tampered"]', 'monitor.tampered always fails: attacks on the tool and code that reaches every package cannot be relaxed'],
      ['rules["fs.target-tamper"]', 'fs.target-tamper always fails: attacks on the tool and code that reaches every package cannot be relaxed'],
    ]);
  });

  it('names an unknown rule, a family, and a rule that cannot be suppressed in suppressions', async () => {
    const s = (rule: string) => ({ rule, package: 'six', reason: 'r' });
    expect(await problemsOf({ suppressions: [s('network.dnz'), s('network.*'), s('monitor.tampered'), s('static.startup-hook'), s('network.dns')] })).toEqual([
      ['suppressions[0].rule', UNKNOWN('network.dnz')],
      ['suppressions[1].rule', 'a suppression names one rule id, not a family'],
      ['suppressions[2].rule', 'this rule cannot be suppressed: attacks on the tool and code that reaches every package always count'],
      ['suppressions[3].rule', 'this rule cannot be suppressed: attacks on the tool and code that reaches every package always count'],
    ]);
  });

  it('names what else a suppression lacks or gets wrong', async () => {
    expect(await problemsOf({ suppressions: [{ rule: 'network.dns', package: 'six', reason: '', expires: '2025-02-30', why: 1 }] })).toEqual([
      ['suppressions[0].reason', 'Too small: expected string to have >=1 characters'],
      ['suppressions[0].expires', 'Invalid ISO date'],
      ['suppressions[0]', "unknown key 'why'"],
    ]);
  });

  it('lists a suppression past its day as a problem, but still resolves the policy', async () => {
    await withPolicies(
      {
        'p.json': {
          extends: 'default',
          suppressions: [
            { rule: 'network.dns', package: 'six', reason: 'r', expires: '2025-01-01' },
            { rule: 'process.exec', package: 'six', reason: 'r', expires: '2024-12-31' },
          ],
        },
      },
      async (dir) => {
        const file = path.join(dir, 'p.json');
        const { policy, problems } = await checkPolicy(file, { today: '2025-01-01' });
        expect(problems).toEqual([{ path: 'suppressions[1].expires', message: 'expired on 2024-12-31; this suppression of process.exec no longer applies' }]);
        expect(policy).toEqual(await loadPolicy(file, { today: '2025-01-01' }));
        expect(policy?.expiredSuppressions.map((s) => s.rule)).toEqual(['process.exec']);
        expect((await checkPolicy(file, { today: '2024-12-31' })).problems).toEqual([]);
      },
    );
  });

  it('lists an expired suppression the policy inherits from its base, at extends', async () => {
    await withPolicies(
      {
        'base.json': { extends: 'default', suppressions: [{ rule: 'network.dns', package: 'six', reason: 'r', expires: '2024-06-30' }] },
        'child.json': { extends: './base.json', suppressions: [{ rule: 'process.exec', package: 'six', reason: 'r', expires: '2024-05-01' }] },
      },
      async (dir) => {
        const { problems } = await checkPolicy(path.join(dir, 'child.json'), { today: '2024-07-01' });
        expect(problems).toEqual([
          { path: 'suppressions[0].expires', message: 'expired on 2024-05-01; this suppression of process.exec no longer applies' },
          { path: 'extends', message: 'an inherited suppression of network.dns for six expired on 2024-06-30; it no longer applies' },
        ]);
        expect((await checkPolicy(path.join(dir, 'child.json'), { today: '2024-05-01' })).problems).toEqual([]);
      },
    );
  });

  it('names a write path that is not absolute and normalised, and refuses the whole filesystem', async () => {
    expect(await problemsOf({ writes: { allow: ['/data', '/data/', '/a/../etc', '/a/./b', '/a//b', 'data', '/'] } })).toEqual([
      ['writes.allow[1]', 'not a normalised path'],
      ['writes.allow[2]', 'not a normalised path'],
      ['writes.allow[3]', 'not a normalised path'],
      ['writes.allow[4]', 'not a normalised path'],
      ['writes.allow[5]', 'not an absolute path'],
      ['writes.allow[6]', 'the whole filesystem cannot be allowed'],
    ]);
  });

  it('names an unknown top-level key, and limits out of range', async () => {
    expect(await problemsOf({ failOn: ['network.*'] })).toEqual([['(root)', "unknown key 'failOn'"]]);
    expect(await problemsOf({ limits: { timeoutSeconds: 5 } })).toEqual([['limits.timeoutSeconds', 'Too small: expected number to be >=10']]);
  });

  it('names an extends that is neither a preset nor a readable file', async () => {
    expect(await problemsOf({ extends: './missing.json' })).toEqual([
      ['extends', "'./missing.json' is neither a preset (default, strict, investigate) nor a readable policy file"],
    ]);
  });

  it('gives a problem that has no path at the root', async () => {
    await withPolicies({}, async (dir) => {
      const file = path.join(dir, 'nope.json');
      const { policy, problems } = await checkPolicy(file);
      expect(policy).toBeNull();
      expect(problems).toEqual([{ path: '(root)', message: expect.stringMatching(new RegExp(`^cannot read policy .*nope\\.json: ENOENT`)) }]);
    });
  });
});

describe('loadPolicy on what is not a file', () => {
  it('makes a FIFO policy bad input (exit 2) at once, not a hang', async () => {
    const policy = path.join(await mkdtemp(path.join(tmpdir(), 'read-policy-')), 'policy.json');
    await execa('mkfifo', [policy]);
    await expect(loadPolicy(policy)).rejects.toMatchObject({
      kind: 'input',
      code: 'policy.unreadable',
      message: `cannot read policy ${policy}: it is not a regular file (a FIFO, socket or device)`,
    });
  });
});
