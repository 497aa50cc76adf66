import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { canonicalVersion, isSafeFilename, normalizeName, versionFromFilename } from './names.js';
import {
  filenameBelongsTo,
  MAX_PAGE_LINKS,
  matchesIfNoneMatch,
  negotiate,
  PageTooLarge,
  parseHtmlPage,
  parseJsonPage,
  renderProjectHtml,
  renderProjectJson,
  type UpstreamLink,
} from './pages.js';
import { redactUrl } from './upstream-client.js';

const A = 'a'.repeat(64);
const B = 'B'.repeat(64);

describe('parseHtmlPage', () => {
  it('resolves relative hrefs against the page, reads hashes, requires-python and yanked', () => {
    const html = `<!DOCTYPE html><html><body>
      <a href="../../files/foo-1.0-py3-none-any.whl#sha256=${A}" data-requires-python="&gt;=3.8">foo-1.0-py3-none-any.whl</a>
      <A HREF="https://files.example/foo-1.0.tar.gz#md5=00&amp;sha256=${B}" data-yanked="">foo-1.0.tar.gz</A>
      <a href="foo-0.9.tar.gz">no hash</a>
    </body></html>`;
    const links = parseHtmlPage(html, 'file:///opt/pypi/simple/foo/index.html');
    expect(links).toEqual([
      { filename: 'foo-1.0-py3-none-any.whl', url: 'file:///opt/pypi/files/foo-1.0-py3-none-any.whl', sha256: A, requiresPython: '>=3.8', yanked: null },
      { filename: 'foo-1.0.tar.gz', url: 'https://files.example/foo-1.0.tar.gz', sha256: B.toLowerCase(), requiresPython: null, yanked: '' },
      { filename: 'foo-0.9.tar.gz', url: 'file:///opt/pypi/simple/foo/foo-0.9.tar.gz', sha256: null, requiresPython: null, yanked: null },
    ]);
  });

  it('honours <base href> and takes the filename from the URL, not the text', () => {
    const links = parseHtmlPage(`<base href="https://cdn.example/pkgs/"><a href="x%2By-1.0.zip#sha256=${A}">lies.whl</a>`, 'https://idx/simple/x/');
    expect(links[0]).toMatchObject({ filename: 'x+y-1.0.zip', url: 'https://cdn.example/pkgs/x%2By-1.0.zip' });
  });
});

describe('parseJsonPage', () => {
  it('reads PEP 691 files, skipping entries that do not fit', () => {
    const json = JSON.stringify({
      meta: { 'api-version': '1.1' },
      name: 'foo',
      files: [
        { filename: 'foo-1.0.tar.gz', url: '/packages/foo-1.0.tar.gz', hashes: { sha256: A }, 'requires-python': '>=3.9', yanked: 'broken' },
        { filename: 'foo-1.1.tar.gz', url: 'foo-1.1.tar.gz', hashes: {}, yanked: true },
        { url: 42 },
      ],
    });
    expect(parseJsonPage(json, 'https://idx.example/simple/foo/')).toEqual([
      { filename: 'foo-1.0.tar.gz', url: 'https://idx.example/packages/foo-1.0.tar.gz', sha256: A, requiresPython: '>=3.9', yanked: 'broken' },
      { filename: 'foo-1.1.tar.gz', url: 'https://idx.example/simple/foo/foo-1.1.tar.gz', sha256: null, requiresPython: null, yanked: '' },
    ]);
  });
});

describe('page filters and the link cap', () => {
  const normal = `<a href="foo-1.0-py3-none-any.whl#sha256=${A}">w</a><a href="Foo_Bar-1.0.tar.gz">x</a><a href="foo-0.9.tar.gz#sha256=${B}">s</a>`;

  it('keeps a normal page of the project unchanged', () => {
    const all = parseHtmlPage(normal, 'https://idx.test/simple/foo/');
    expect(all.map((l) => l.filename)).toEqual(['foo-1.0-py3-none-any.whl', 'Foo_Bar-1.0.tar.gz', 'foo-0.9.tar.gz']);
    expect(parseHtmlPage(normal, 'https://idx.test/simple/foo/', { project: 'foo' })).toEqual([all[0], all[2]]);
    expect(parseHtmlPage(normal, 'https://idx.test/simple/foo/', { project: 'foo-bar' })).toEqual([all[1]]);
  });

  it('tells which filenames are distributions of a project, as pip reads them', () => {
    expect(filenameBelongsTo('foo-bar', 'foo_bar-2.0-cp311-cp311-linux_x86_64.whl')).toBe(true);
    expect(filenameBelongsTo('foo-bar', 'Foo.Bar-2.0-py3.11.egg')).toBe(true);
    expect(filenameBelongsTo('foo-bar', 'foo-bar-3.0rc1.tar.gz')).toBe(true);
    expect(filenameBelongsTo('foo', 'foo_bar-2.0-py3-none-any.whl')).toBe(false);
    expect(filenameBelongsTo('foo', 'foobar-1.0.tar.gz')).toBe(false);
    expect(filenameBelongsTo('foo', 'foo-1.0.exe')).toBe(false);
    expect(filenameBelongsTo('foo', '..%2Ffoo-1.0.whl')).toBe(false);
  });

  it('applies keep after the project test, and counts only what it keeps against the cap', () => {
    const seen: string[] = [];
    const keep = (l: UpstreamLink) => {
      seen.push(l.filename);
      return l.sha256 !== null;
    };
    const kept = parseHtmlPage(normal, 'https://idx.test/simple/foo/', { project: 'foo', keep, maxLinks: 2 });
    expect(kept.map((l) => l.filename)).toEqual(['foo-1.0-py3-none-any.whl', 'foo-0.9.tar.gz']);
    expect(seen).toEqual(['foo-1.0-py3-none-any.whl', 'foo-0.9.tar.gz']);
    expect(() => parseHtmlPage(normal, 'https://idx.test/simple/foo/', { maxLinks: 2 })).toThrow(new PageTooLarge(2, undefined));
    expect(new PageTooLarge(2, 'foo').message).toBe('the page lists more than 2 files of foo; refused');
  });

  // A hostile page of the size that took the proxy to 576 MB: 500,000 links, about 60 MB. One link
  // in 50 is a file of foo (10,000), the rest are bar's.
  const N = 500_000;
  const nameOf = (i: number) => (i % 50 === 0 ? `foo-1.${i}-py3-none-any.whl` : `bar-1.${i}-py3-none-any.whl`);

  /** A real collector, so a sample counts what is live, not garbage waiting for one. */
  const gc = (() => {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  })();

  /**
   * Parse with a `keep` that accepts everything and, every 10,000 links, collects garbage and
   * samples the heap: the largest growth of live heap seen while parsing.
   */
  function parseSampled(parse: () => UpstreamLink[], setKeep: (keep: (l: UpstreamLink) => boolean) => void): { error: unknown; peak: number } {
    gc();
    const before = process.memoryUsage().heapUsed;
    let peak = 0;
    let calls = 0;
    setKeep(() => {
      if (++calls % 10_000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - before);
      }
      return true;
    });
    try {
      parse();
      return { error: null, peak };
    } catch (error: unknown) {
      return { error, peak };
    }
  }

  // Measured: a kept link holds about 425 bytes, so the 50,000 the cap allows are about 21 MB live;
  // without the cap the same 500,000-link page held 212 MB live. 40 MB leaves room for the parser.
  const LIVE_BOUND = 40 * 1024 * 1024;

  it('keeps only the project’s files of a 500,000-link HTML page, and refuses it past the cap in bounded memory', () => {
    const html = ['<!DOCTYPE html><html><body>\n'];
    for (let i = 0; i < N; i++) html.push(`<a href="../../p/${nameOf(i)}#sha256=${A}">${i}</a><br/>\n`);
    const text = html.join('');
    expect(text.length).toBeGreaterThan(55_000_000);

    const kept = parseHtmlPage(text, 'https://idx.test/simple/foo/', { project: 'foo' });
    expect(kept).toHaveLength(N / 50);
    expect(kept[1]).toEqual({
      filename: 'foo-1.50-py3-none-any.whl',
      url: 'https://idx.test/p/foo-1.50-py3-none-any.whl',
      sha256: A,
      requiresPython: null,
      yanked: null,
    });

    let keep: (l: UpstreamLink) => boolean = () => true;
    const { error, peak } = parseSampled(
      () => parseHtmlPage(text, 'https://idx.test/simple/foo/', { keep: (l) => keep(l) }),
      (k) => (keep = k),
    );
    expect(error).toEqual(new PageTooLarge(MAX_PAGE_LINKS, undefined));
    expect((error as Error).message).toBe('the page lists more than 50000 files; refused');
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(LIVE_BOUND);
  });

  it('does the same for a 500,000-file PEP 691 JSON page', () => {
    const files = Array.from({ length: N }, (_, i) => ({ filename: nameOf(i), url: `../../p/${nameOf(i)}`, hashes: { sha256: A } }));
    const text = JSON.stringify({ meta: { 'api-version': '1.0' }, name: 'foo', files });
    files.length = 0;
    const kept = parseJsonPage(text, 'https://idx.test/simple/foo/', { project: 'foo' });
    expect(kept).toHaveLength(N / 50);
    expect(kept.every((l) => l.filename.startsWith('foo-1.'))).toBe(true);
    expect(() => parseJsonPage(text, 'https://idx.test/simple/foo/', { project: 'bar' })).toThrow('the page lists more than 50000 files of bar; refused');
  });
});

describe('rendering', () => {
  const hostile = { filename: 'x"><script>alert(1)</script>.whl', sha256: A, requiresPython: '>=3.8"<', yanked: "it's <bad>" };

  it('escapes everything upstream controls in HTML', () => {
    const html = renderProjectHtml('foo', [hostile]);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('"><');
    // The page parses back to what went in.
    const back = parseHtmlPage(html, 'http://proxy/simple/foo/');
    expect(back).toEqual([
      {
        filename: hostile.filename,
        url: `http://proxy/files/${A}/${encodeURIComponent(hostile.filename)}`,
        sha256: A,
        requiresPython: hostile.requiresPython,
        yanked: hostile.yanked,
      },
    ]);
  });

  it('renders PEP 691 JSON with relative URLs and yanked as bool or reason', () => {
    const json = JSON.parse(
      renderProjectJson('foo', [
        { ...hostile, yanked: '' },
        { filename: 'foo-1.0.zip', sha256: A, requiresPython: null, yanked: null },
      ]),
    );
    expect(json.meta['api-version']).toBe('1.0');
    expect(json.files[0]).toMatchObject({ url: `../../files/${A}/${encodeURIComponent(hostile.filename)}#sha256=${A}`, hashes: { sha256: A }, yanked: true });
    expect(json.files[1]).toEqual({ filename: 'foo-1.0.zip', url: `../../files/${A}/foo-1.0.zip#sha256=${A}`, hashes: { sha256: A } });
  });
});

describe('negotiate', () => {
  it.each([
    [undefined, 'text-html'],
    ['*/*', 'text-html'],
    ['text/html', 'text-html'],
    ['application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01', 'json'],
    ['application/vnd.pypi.simple.v1+json;q=0.5, text/html', 'text-html'],
    ['application/vnd.pypi.simple.v1+html, text/html;q=0.5', 'v1-html'],
    ['application/vnd.pypi.simple.v1+json, */*;q=0.1', 'json'],
    ['application/json', 'text-html'],
  ] as const)('%s -> %s', (accept, format) => {
    expect(negotiate(accept)).toBe(format);
  });

  it('matches If-None-Match lists and weak tags', () => {
    expect(matchesIfNoneMatch('W/"abc", "def"', '"abc"')).toBe(true);
    expect(matchesIfNoneMatch('"x"', '"abc"')).toBe(false);
    expect(matchesIfNoneMatch(undefined, '"abc"')).toBe(false);
  });
});

describe('names', () => {
  it('normalises like PEP 503', () => {
    expect(normalizeName('Foo.Bar__baz--Q')).toBe('foo-bar-baz-q');
  });

  it.each([
    ['foo', 'foo-1.0-py3-none-any.whl', '1.0'],
    ['foo-bar', 'foo_bar-2.0.post1-1-cp311-cp311-linux_x86_64.whl', '2.0.post1'],
    ['foo-bar', 'foo-bar-3.0rc1.tar.gz', '3.0rc1'],
    ['foo-bar', 'Foo_Bar-3.0.zip', '3.0'],
    ['foo', 'other-1.0.tar.gz', null],
    ['foo', 'foo-1.0.exe', null],
  ])('%s %s -> %s', (project, filename, version) => {
    expect(versionFromFilename(project, filename)).toBe(version);
  });

  it('compares versions after PEP 440 normalisation', () => {
    expect(canonicalVersion('v1.0.0')).toBe(canonicalVersion('1.0'));
    expect(canonicalVersion('1.0RC1')).toBe('1rc1');
    expect(canonicalVersion('1.0-1')).toBe('1.post1');
    expect(canonicalVersion('1!2.0.dev3+Local_x')).toBe('1!2.dev3+local.x');
  });

  it('accepts only plain distribution filenames', () => {
    expect(isSafeFilename('torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl')).toBe(true);
    for (const bad of ['../x.whl', 'a/b.whl', '.hidden.whl', 'x\n.whl', 'x y.whl', '']) expect(isSafeFilename(bad)).toBe(false);
  });

  it('strips credentials from URLs', () => {
    expect(redactUrl('https://user:secret@idx.example/simple/')).toBe('https://idx.example/simple/');
    expect(redactUrl('not a url //user:pw@host')).toBe('not a url //host');
  });
});
