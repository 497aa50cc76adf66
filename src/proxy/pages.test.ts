import { describe, expect, it } from 'vitest';
import { canonicalVersion, isSafeFilename, normalizeName, versionFromFilename } from './names.js';
import { matchesIfNoneMatch, negotiate, parseHtmlPage, parseJsonPage, renderProjectHtml, renderProjectJson } from './pages.js';
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
