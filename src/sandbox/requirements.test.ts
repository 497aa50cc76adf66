import { describe, expect, it } from 'vitest';
import { parseLock } from '../lock/parse.js';
import { renderRequirements } from './requirements.js';

describe('renderRequirements', () => {
  it('keeps extras, markers and every hash, and drops index options', () => {
    const hashA = 'a'.repeat(64);
    const hashB = 'b'.repeat(64);
    const plan = parseLock(
      [
        '--index-url https://example.invalid/simple',
        `Foo_Bar[socks,security]==1.0 ; python_version >= "3.8" --hash=sha256:${hashA} --hash=sha256:${hashB}`,
        '',
      ].join('\n'),
      'lock.txt',
    );
    const text = renderRequirements(plan);
    expect(text).not.toContain('index-url');
    expect(text).toBe(
      `foo-bar[socks,security]==1.0 ; python_version >= "3.8" \\\n    --hash=sha256:${hashA} \\\n    --hash=sha256:${hashB}\n`,
    );
    // What we render must parse back to the same requirements.
    expect(parseLock(text, 'rendered').requirements.map((r) => [r.name, r.version, r.marker, r.sha256])).toEqual(
      plan.requirements.map((r) => [r.name, r.version, r.marker, r.sha256]),
    );
  });
});
