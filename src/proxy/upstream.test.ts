import { describe, expect, it } from 'vitest';
import { DEFAULT_INDEX_URL, loadPipConfigFiles, parseIni, resolveUpstreams } from './upstream.js';

const file = (path: string, text: string) => ({ path, text });

describe('parseIni', () => {
  it('reads sections, both delimiters, comments and continuation lines', () => {
    const ini = parseIni(
      [
        '# comment',
        '[global]',
        'Index-URL = https://a.example/simple',
        'extra-index-url =',
        '    https://b.example/simple',
        '',
        '    ; a comment inside the value',
        '    https://c.example/simple',
        'timeout: 60',
        '[install]',
        'no-deps = yes',
      ].join('\n'),
    );
    expect(ini.get('global')?.get('index-url')).toBe('https://a.example/simple');
    expect(ini.get('global')?.get('extra-index-url')?.split(/\s+/)).toEqual(['https://b.example/simple', 'https://c.example/simple']);
    expect(ini.get('global')?.get('timeout')).toBe('60');
    expect(ini.get('install')?.get('no-deps')).toBe('yes');
  });
});

describe('resolveUpstreams', () => {
  it('defaults to PyPI when nothing is configured', () => {
    expect(resolveUpstreams({ cli: {}, env: {}, files: [] })).toEqual({ indexUrl: DEFAULT_INDEX_URL, extraIndexUrls: [] });
  });

  it('lets later files override earlier ones, key by key', () => {
    const up = resolveUpstreams({
      cli: {},
      env: {},
      files: [
        file('/etc/xdg/pip/pip.conf', '[global]\nindex-url = https://global/simple\nextra-index-url = https://g1 https://g2\n'),
        file('/root/.config/pip/pip.conf', '[global]\nindex-url = https://user/simple\n'),
      ],
    });
    expect(up).toEqual({ indexUrl: 'https://user/simple', extraIndexUrls: ['https://g1', 'https://g2'] });
  });

  it('lets [install] override [global] even from an earlier file, as pip orders sections before files', () => {
    const up = resolveUpstreams({
      cli: {},
      env: {},
      files: [
        file('/etc/pip.conf', '[install]\nindex-url = https://install/simple\n'),
        file('/root/.config/pip/pip.conf', '[global]\nindex-url = https://global/simple\n[freeze]\nindex-url = https://ignored\n'),
      ],
    });
    expect(up.indexUrl).toBe('https://install/simple');
  });

  it('accepts pip spellings of keys (underscores, leading --)', () => {
    const up = resolveUpstreams({ cli: {}, env: {}, files: [file('x', '[global]\n--index_url = https://x/simple\nEXTRA_INDEX_URL=file:///a\n')] });
    expect(up).toEqual({ indexUrl: 'https://x/simple', extraIndexUrls: ['file:///a'] });
  });

  it('lets PIP_* environment variables override files, replacing not appending', () => {
    const up = resolveUpstreams({
      cli: {},
      env: { PIP_INDEX_URL: 'https://env/simple', PIP_EXTRA_INDEX_URL: 'https://e1\nhttps://e2' },
      files: [file('f', '[install]\nindex-url = https://file/simple\nextra-index-url = https://f1\n')],
    });
    expect(up).toEqual({ indexUrl: 'https://env/simple', extraIndexUrls: ['https://e1', 'https://e2'] });
  });

  it('lets the CLI override everything', () => {
    const up = resolveUpstreams({
      cli: { indexUrl: 'https://cli/simple', extraIndexUrls: ['https://c1'] },
      env: { PIP_INDEX_URL: 'https://env/simple', PIP_EXTRA_INDEX_URL: 'https://e1' },
      files: [file('f', '[global]\nindex-url = https://file/simple\n')],
    });
    expect(up).toEqual({ indexUrl: 'https://cli/simple', extraIndexUrls: ['https://c1'] });
  });

  it('treats an empty CLI list as not given, and drops duplicates of the index', () => {
    const up = resolveUpstreams({
      cli: { extraIndexUrls: [] },
      env: {},
      files: [file('f', '[global]\nindex-url = https://a\nextra-index-url = https://a https://b https://b\n')],
    });
    expect(up).toEqual({ indexUrl: 'https://a', extraIndexUrls: ['https://b'] });
  });
});

describe('loadPipConfigFiles', () => {
  const fs = (files: Record<string, string>) => async (p: string) => files[p] ?? null;

  it('reads global, user, site and PIP_CONFIG_FILE in pip order', async () => {
    const files = await loadPipConfigFiles({
      env: { VIRTUAL_ENV: '/venv', PIP_CONFIG_FILE: '/custom.conf' },
      homedir: '/home/u',
      readFile: fs({
        '/custom.conf': 'env',
        '/venv/pip.conf': 'site',
        '/etc/pip.conf': 'etc',
        '/etc/xdg/pip/pip.conf': 'xdg',
      }),
    });
    expect(files.map((f) => f.text)).toEqual(['xdg', 'etc', 'site', 'env']);
  });

  it('reads user files when PIP_CONFIG_FILE is unset or missing', async () => {
    const readFile = fs({ '/home/u/.pip/pip.conf': 'legacy', '/home/u/.config/pip/pip.conf': 'xdg-user', '/etc/pip.conf': 'etc' });
    const unset = await loadPipConfigFiles({ env: {}, homedir: '/home/u', readFile });
    expect(unset.map((f) => f.text)).toEqual(['etc', 'legacy', 'xdg-user']);
    const missing = await loadPipConfigFiles({ env: { PIP_CONFIG_FILE: '/nope' }, homedir: '/home/u', readFile });
    expect(missing.map((f) => f.text)).toEqual(['etc', 'legacy', 'xdg-user']);
  });

  it('honours XDG_CONFIG_DIRS and XDG_CONFIG_HOME', async () => {
    const files = await loadPipConfigFiles({
      env: { XDG_CONFIG_DIRS: '/a:/b', XDG_CONFIG_HOME: '/cfg' },
      homedir: '/home/u',
      readFile: fs({ '/a/pip/pip.conf': 'a', '/b/pip/pip.conf': 'b', '/cfg/pip/pip.conf': 'user' }),
    });
    expect(files.map((f) => f.text)).toEqual(['a', 'b', 'user']);
  });

  it('feeds resolveUpstreams end to end (this machine’s layout)', async () => {
    const files = await loadPipConfigFiles({
      env: {},
      homedir: '/root',
      readFile: fs({
        '/etc/xdg/pip/pip.conf': '[global]\nconstraint = /etc/xdg/pip/constraints.txt\n',
        '/root/.config/pip/pip.conf': '[global]\nfind-links = /opt/wheels\nextra-index-url = file:///opt/pypi/simple file:///opt/pypi-more/simple\n',
      }),
    });
    expect(resolveUpstreams({ cli: {}, env: {}, files })).toEqual({
      indexUrl: DEFAULT_INDEX_URL,
      extraIndexUrls: ['file:///opt/pypi/simple', 'file:///opt/pypi-more/simple'],
    });
  });
});
