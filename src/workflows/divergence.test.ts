import { describe, expect, it } from 'vitest';
import { divergence, MAX_LISTED, REQUEST_LOG_CAP, requestTarget, type RunRequests } from './divergence.js';

const SHA = 'ab'.repeat(32);
const get = (...paths: string[]) => paths.map((path) => ({ method: 'GET', path }));
const run = (requests: RunRequests['requests'], resolved: string[] | null = ['app==1.0']): RunRequests => ({ requests, resolved });
const NAMES = ['resolve', 'resolve-check'] as const;

/** pip's requests for a project with one sdist dependency built under build isolation. */
const PIP = get('/simple/app/', `/files/${SHA}/app-1.0-py3-none-any.whl`, '/simple/dep/', '/simple/setuptools/', '/simple/wheel/');

describe('requestTarget', () => {
  it('spells a project page one way whatever pip sent, and keeps files and other paths as sent', () => {
    expect(['/simple/Foo_Bar', '/simple/foo-bar/', '/simple/foo.bar/', '/simple/FOO%2Dbar/'].map((path) => requestTarget({ method: 'get', path }))).toEqual(
      Array(4).fill('GET /simple/foo-bar/'),
    );
    expect(requestTarget({ method: 'GET', path: '/simple' })).toBe('GET /simple/');
    expect(requestTarget({ method: 'GET', path: `/files/${SHA.toUpperCase()}/app-1.0.tar.gz` })).toBe(`GET /files/${SHA}/app-1.0.tar.gz`);
    // Refused or odd requests are kept whole: their difference is exactly the news.
    expect(requestTarget({ method: 'GET', path: '/simple/x/?d=1' })).toBe('GET /simple/x/?d=1');
    expect(requestTarget({ method: 'POST', path: '/simple/x/' })).toBe('POST /simple/x/');
    expect(requestTarget({ method: 'HEAD', path: '/simple/x/' })).not.toBe(requestTarget({ method: 'GET', path: '/simple/x/' }));
  });
});

describe('divergence', () => {
  it('is nothing for two runs that asked for the same targets, in any order, repeated, spelled differently, with other statuses', () => {
    const second = [...PIP].reverse().concat(get('/simple/App', '/simple/app/'));
    expect(divergence(run(PIP), run(second), NAMES, 'resolve-check')).toEqual([]);
    // Two runs that both failed to resolve, with the same requests: nothing to compare beyond them.
    expect(divergence(run(PIP, null), run(PIP, null), NAMES, 'resolve-check')).toEqual([]);
  });

  it('lists the request targets seen in only one run, sorted, with the phase and no package', () => {
    const first = run([...PIP, ...get('/simple/leak-0a1b2c3d4e5f/')]);
    const second = run([...PIP, ...get('/simple/Leak_99ff00112233/', `/files/${SHA}/leak-1.0.tar.gz`)]);
    expect(divergence(first, second, NAMES, 'resolve-check')).toEqual([
      {
        rule: 'integrity.resolve-divergence',
        severity: 'high',
        package: null,
        phase: 'resolve-check',
        message: expect.stringMatching(/asked the proxy for 1 thing\(s\) only in resolve and 2 only in resolve-check/),
        evidence: {
          kind: 'requests',
          runs: ['resolve', 'resolve-check'],
          onlyFirst: ['GET /simple/leak-0a1b2c3d4e5f/'],
          onlyFirstCount: 1,
          onlySecond: [`GET /files/${SHA}/leak-1.0.tar.gz`, 'GET /simple/leak-99ff00112233/'],
          onlySecondCount: 2,
        },
      },
    ]);
  });

  it('bounds the listed targets but counts them all', () => {
    const many = Array.from({ length: MAX_LISTED + 5 }, (_, i) => `/simple/leak-${String(i).padStart(3, '0')}/`);
    const [f] = divergence(run([...PIP, ...get(...many)]), run(PIP), NAMES, 'resolve-check');
    expect(f?.evidence.onlyFirst).toHaveLength(MAX_LISTED);
    expect(f?.evidence.onlyFirstCount).toBe(MAX_LISTED + 5);
    expect(f?.evidence.onlySecond).toEqual([]);
  });

  it('a request log that filled up is a divergence it cannot rule out, even with equal targets', () => {
    const full = Array.from({ length: REQUEST_LOG_CAP }, () => ({ method: 'GET', path: '/simple/app/' }));
    expect(divergence(run(full), run(PIP.slice(0, 1)), NAMES, 'resolve-check')).toEqual([
      expect.objectContaining({ rule: 'integrity.resolve-divergence', evidence: expect.objectContaining({ kind: 'requests', logFull: true }) }),
    ]);
  });

  it('a different resolution is a divergence of its own, as is one run resolving and the other not', () => {
    expect(divergence(run(PIP, ['app==1.0', 'dep==1.0']), run(PIP, ['app==1.0', 'dep==2.0']), NAMES, 'resolve-check')).toEqual([
      expect.objectContaining({
        rule: 'integrity.resolve-divergence',
        phase: 'resolve-check',
        evidence: expect.objectContaining({ kind: 'resolution', onlyFirst: ['dep==1.0'], onlySecond: ['dep==2.0'] }),
      }),
    ]);
    expect(divergence(run(PIP, ['app==1.0']), run(PIP, null), NAMES, 'resolve-check')).toEqual([
      expect.objectContaining({
        message: expect.stringContaining('resolve-check resolved nothing and resolve did'),
        evidence: expect.objectContaining({ kind: 'resolution', resolvedFirst: true, resolvedSecond: false, onlyFirst: ['app==1.0'] }),
      }),
    ]);
  });
});
