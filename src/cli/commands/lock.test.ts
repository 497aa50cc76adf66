import { describe, expect, it } from 'vitest';
import { defaultLockPath, lockFormatFor, LockOptions, runLock } from './lock.js';

describe('lock command options', () => {
  it('puts the lock beside the requirements.in by default, named for its format', () => {
    expect(defaultLockPath('deps/requirements.in', 'requirements')).toBe('deps/requirements.lock');
    expect(defaultLockPath('requirements.in', 'pylock')).toBe('pylock.toml');
  });

  it('defaults to a requirements lock under the default policy, with stdout in text', () => {
    expect(LockOptions.parse({})).toMatchObject({ policy: 'default', format: 'text', extraIndexUrl: [] });
  });

  it('writes pylock.toml when -o names one (PEP 751 names), unless --lock-format says otherwise', () => {
    expect(lockFormatFor(undefined, undefined)).toBe('requirements');
    expect(lockFormatFor('out/pylock.toml', undefined)).toBe('pylock');
    expect(lockFormatFor('pylock.dev.toml', undefined)).toBe('pylock');
    expect(lockFormatFor('my-pylock.toml', undefined)).toBe('requirements');
    expect(lockFormatFor('requirements.lock', 'pylock')).toBe('pylock');
    expect(lockFormatFor('pylock.toml', 'requirements')).toBe('requirements');
  });

  it('an unknown --lock-format is bad input, before the engine is asked for', async () => {
    const ctx = {
      logger: undefined as never,
      signal: new AbortController().signal,
      color: false,
      engine: () => {
        throw new Error('no engine in this test');
      },
    };
    await expect(runLock('requirements.in', { lockFormat: 'poetry' }, ctx)).rejects.toMatchObject({ kind: 'input', code: 'options.invalid' });
  });
});
