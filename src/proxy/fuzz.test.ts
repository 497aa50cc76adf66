/*
 * Hostile upstream pages (issue 10, item 8): malformed HTML and JSON, enormous pages and hostile
 * filenames. The page parsers are not a user-facing boundary: an upstream that sends a page they
 * cannot read is an upstream that did not answer (server.ts logs it and uses the others; with none
 * left, the run fails as an environment error). So the contract checked here is: parsePage returns
 * links, or throws one of the three errors a page can cause (SyntaxError for JSON that does not
 * parse, ZodError for JSON that is not a page, PageTooLarge), quickly; never anything else.
 * What it returns is well formed, and what the proxy would list (`listable`) has a filename that
 * cannot climb out of pip's download directory and survives the proxy's own rendering exactly.
 */
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';

import { isSafeFilename } from './names.js';
import {
  filenameBelongsTo,
  listable,
  PageTooLarge,
  parseHtmlPage,
  parseJsonPage,
  parsePage,
  PEP691_JSON,
  renderProjectHtml,
  renderProjectJson,
  type PageFile,
  type PageFilter,
  type UpstreamLink,
} from './pages.js';

// A bound for hangs, not a benchmark: the hangs fuzzing found took minutes; a loaded CI machine must not fail it.
const PER_RUN_MS = 10_000;
const BUDGET = { interruptAfterTimeLimit: 3000 } as const;
const A = 'a'.repeat(64);
const B = 'B'.repeat(64);

function quickly<T>(fn: () => T): T {
  const started = performance.now();
  try {
    return fn();
  } finally {
    expect(performance.now() - started).toBeLessThan(PER_RUN_MS);
  }
}

/** parsePage's outcome: its links, or the error, which must be one a page can cause. */
function parseOrPageError(parse: () => UpstreamLink[]): UpstreamLink[] | null {
  try {
    return quickly(parse);
  } catch (error: unknown) {
    if (error instanceof SyntaxError || error instanceof ZodError || error instanceof PageTooLarge) return null;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile names and hrefs

const hostileFilename = fc.oneof(
  fc.constantFrom(
    'foo-1.0-py3-none-any.whl',
    'foo-1.0.tar.gz',
    'Foo_Bar-2.0.zip',
    '../../../etc/passwd',
    '..%2F..%2Ffoo-1.0.whl',
    '%2e%2e%2ffoo-1.0.tar.gz',
    'foo-1.0.whl%00.txt',
    'foo-1.0.whl\u0000',
    'foo-1.0-py3-none-any.whl/',
    '..\\..\\foo-1.0.whl',
    'C:\\foo-1.0.whl',
    '.foo-1.0.tar.gz',
    '-foo-1.0.tar.gz',
    'foo-1.0.tar.gz\n',
    'foo\u202e1.0.whl',
    'fo\u00f6-1.0.whl',
    'foo-1.0 .whl',
    '',
    '.',
    '..',
    `foo-${'1'.repeat(300)}.whl`,
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }).map((s) => encodeURIComponent(s)),
);
const hrefPrefix = fc.constantFrom(
  '',
  '../../files/',
  'https://files.test/p/',
  '/abs/',
  '//other.test/',
  'javascript:',
  'file:///etc/',
  'data:,',
  'http://[::1',
  'https://user:pass@files.test/',
  '\u0000',
  ' ',
);
const fragment = fc.constantFrom('', `#sha256=${A}`, `#sha256=${B}`, '#sha256=zz', `#md5=00&sha256=${A}`, `#sha256=${A}&x`, '#', `#sha256=${A.slice(1)}`);
const href = fc.tuple(hrefPrefix, hostileFilename, fragment).map(([p, n, f]) => `${p}${n}${f}`);

// ---------------------------------------------------------------------------------------------
// Pages

const escapeAttr = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const attrValue = fc.oneof(fc.string({ unit: 'binary', maxLength: 15 }), fc.constantFrom('>=3.8', '&gt;=3.8', '&#0;', '&#x110000;', '&amp;&', '"', "'"));
const htmlPiece = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(href, fc.boolean()).map(([h, escape]) => `<a href="${escape ? escapeAttr(h) : h}">x</a>`) },
  fc.tuple(href, attrValue, attrValue).map(([h, rp, y]) => `<A HREF='${escapeAttr(h)}' data-requires-python="${rp}" data-yanked="${y}">`),
  fc.tuple(href).map(([h]) => `<a href=${h}>`),
  hrefPrefix.map((p) => `<base href="${p}">`),
  fc.constantFrom(
    '<a>',
    '<a href>',
    '<a href="',
    "<a href='",
    '</a>',
    '<!--',
    '-->',
    '<![CDATA[',
    ']]>',
    '<script>',
    '</script>',
    '<textarea>',
    '<plaintext>',
    '<!DOCTYPE html>',
    '<html>',
    '<body>',
    '<',
    '>',
    '&',
    '&#',
    '&#x;',
    '\u0000',
    '\r\n',
    '<svg><a xlink:href="x-1.0.whl">',
    '<base href="https://cdn.test/pkgs/">',
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const htmlPage = fc.oneof(
  { weight: 4, arbitrary: fc.array(htmlPiece, { maxLength: 40, size: 'medium' }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.nat({ max: 200_000 }).map((n) => '<a href="'.repeat(n / 9)) },
  { weight: 1, arbitrary: fc.nat({ max: 100_000 }).map((n) => `${'<div>'.repeat(n / 5)}<a href="foo-1.0.tar.gz#sha256=${A}">x</a>`) },
  { weight: 1, arbitrary: fc.nat({ max: 100_000 }).map((n) => `<a href="${'%2e%2e%2f'.repeat(n / 9)}foo-1.0.whl">`) },
);

const jsonValueOrHostile = fc.oneof(fc.jsonValue({ maxDepth: 2 }), hostileFilename, href);
const jsonFile = fc.record(
  {
    filename: fc.oneof(hostileFilename, jsonValueOrHostile),
    url: fc.oneof({ weight: 4, arbitrary: href }, { weight: 1, arbitrary: jsonValueOrHostile }),
    hashes: fc.oneof(fc.record({ sha256: fc.oneof(fc.constantFrom(A, B, 'zz', ''), jsonValueOrHostile) }, { requiredKeys: [] }), jsonValueOrHostile),
    'requires-python': fc.oneof(attrValue, fc.constant(null), jsonValueOrHostile),
    yanked: fc.oneof(fc.boolean(), attrValue, fc.constant(null), jsonValueOrHostile),
  },
  { requiredKeys: [] },
);
const jsonPageText = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .array(fc.oneof({ weight: 4, arbitrary: jsonFile }, { weight: 1, arbitrary: fc.jsonValue() }), { maxLength: 20 })
      .map((files) => JSON.stringify({ meta: { 'api-version': '1.0' }, files })),
  },
  // Truncated, not JSON, or not a page.
  { weight: 1, arbitrary: fc.tuple(fc.array(jsonFile, { maxLength: 5 }), fc.nat()).map(([files, at]) => JSON.stringify({ files }).slice(0, at)) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 50 }).map((s) => `{${s}`) },
  { weight: 1, arbitrary: fc.nat({ max: 100_000 }).map((n) => `{"files": [${'['.repeat(n)}${']'.repeat(n)}]}`) },
  { weight: 1, arbitrary: fc.nat({ max: 100_000 }).map((n) => `{"files": ${'['.repeat(n)}`) },
  {
    weight: 1,
    arbitrary: fc
      .nat({ max: 5_000 })
      .map((n) => JSON.stringify({ files: Array.from({ length: n }, (_, i) => ({ url: `foo-1.${i}.tar.gz`, hashes: { sha256: A } })) })),
  },
);

const contentType = fc.constantFrom(
  null,
  '',
  'text/html',
  'text/html; charset=utf-8',
  PEP691_JSON,
  'application/json',
  'text/plain',
  'application/vnd.pypi.simple.v1+html',
  ';;',
  'JSON',
);
const pageUrl = fc.constantFrom('https://idx.test/simple/foo/', 'file:///opt/pypi/simple/foo/index.html', 'http://127.0.0.1:3141/simple/foo/');
const filter = fc.constantFrom<PageFilter>({}, { project: 'foo' }, { project: 'foo-bar' }, { maxLinks: 3 }, { project: 'foo', maxLinks: 1 });

/** What every returned link must look like, whatever the page held. */
function expectWellFormed(links: UpstreamLink[], used: PageFilter): void {
  expect(links.length).toBeLessThanOrEqual(used.maxLinks ?? Infinity);
  for (const link of links) {
    expect(link.filename.length).toBeGreaterThan(0);
    const url = new URL(link.url);
    expect(url.hash).toBe('');
    expect(url.href).toBe(link.url);
    if (link.sha256 !== null) expect(link.sha256).toMatch(/^[0-9a-f]{64}$/);
    if (used.project !== undefined) expect(filenameBelongsTo(used.project, link.filename)).toBe(true);
    if (listable(link)) {
      // Said again without the regex: nothing that could leave pip's download directory.
      expect(isSafeFilename(link.filename)).toBe(true);
      expect(link.filename).not.toMatch(/[/\\\u0000-\u001f\u007f-\uffff]/);
      expect(link.filename.startsWith('.')).toBe(false);
      expect(link.filename.length).toBeLessThanOrEqual(255);
    }
  }
}

describe('parsePage on hostile upstream pages', () => {
  it('returns well-formed links, or throws only what a bad page can cause, on malformed HTML', () => {
    fc.assert(
      fc.property(htmlPage, contentType, pageUrl, filter, (text, type, url, used) => {
        const links = parseOrPageError(() => parsePage(text, type, url, used));
        if (links !== null) expectWellFormed(links, used);
      }),
      { numRuns: 400, ...BUDGET },
    );
  });

  it('returns well-formed links, or throws only what a bad page can cause, on malformed JSON', () => {
    fc.assert(
      fc.property(jsonPageText, contentType, pageUrl, filter, (text, type, url, used) => {
        const links = parseOrPageError(() => parsePage(text, type, url, used));
        if (links !== null) expectWellFormed(links, used);
      }),
      { numRuns: 400, ...BUDGET },
    );
  });

  it('never throws on HTML, whatever it holds, unless it lists too many files', () => {
    fc.assert(
      fc.property(htmlPage, pageUrl, (text, url) => {
        expectWellFormed(
          quickly(() => parseHtmlPage(text, url)),
          {},
        );
      }),
      { numRuns: 300, ...BUDGET },
    );
  });

  it('lists what it keeps through its own rendering exactly: the hostile metadata of a listable file survives escaping', () => {
    // Mostly names the proxy lists (any character isSafeFilename allows, `+` and `!` included), some it does not.
    const name = fc.oneof({ weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._+!-]{0,30}$/) }, { weight: 1, arbitrary: hostileFilename });
    const metadata = fc.oneof(attrValue, fc.string({ unit: 'binary', maxLength: 40, size: 'medium' }));
    const page = fc.array(fc.tuple(hrefPrefix, name, metadata, fc.option(metadata)), { maxLength: 15 });
    fc.assert(
      fc.property(page, (entries) => {
        const json = JSON.stringify({
          files: entries.map(([prefix, filename, rp, yanked]) => ({
            url: `${prefix}${encodeURIComponent(filename)}`,
            hashes: { sha256: A },
            'requires-python': rp,
            yanked,
          })),
        });
        const files: PageFile[] = parseJsonPage(json, 'https://idx.test/simple/foo/')
          .filter(listable)
          .map(({ filename, sha256, requiresPython, yanked }) => ({ filename, sha256, requiresPython, yanked }));
        const local = 'http://127.0.0.1:3141/simple/foo/';
        const strip = (links: UpstreamLink[]) => links.map(({ filename, sha256, requiresPython, yanked }) => ({ filename, sha256, requiresPython, yanked }));
        expect(strip(parseHtmlPage(renderProjectHtml('foo', files), local))).toEqual(files);
        expect(strip(parseJsonPage(renderProjectJson('foo', files), local))).toEqual(files);
      }),
      { numRuns: 200, ...BUDGET },
    );
  });
});

describe('parsePage on enormous pages', () => {
  it('refuses a page of more links than its cap, without holding them', () => {
    const html = `<a href="foo-1.0.tar.gz#sha256=${A}">x</a>\n`.repeat(60_001);
    expect(() => quickly(() => parseHtmlPage(html, 'https://idx.test/simple/foo/', { project: 'foo' }))).toThrow(new PageTooLarge(50_000, 'foo'));
  });

  it('reads a 4 MB page of another project’s files, and a 4.5 MB page of one unclosed attribute, as no links', () => {
    const other = '<a href="bar-1.0.tar.gz">x</a>\n'.repeat(125_000);
    expect(quickly(() => parseHtmlPage(other, 'https://idx.test/simple/foo/', { project: 'foo' }))).toEqual([]);
    expect(quickly(() => parseHtmlPage('<a href="'.repeat(500_000), 'https://idx.test/simple/foo/'))).toEqual([]);
  });

  // htmlparser2's Parser kept open elements in an array and `unshift`ed each new one: quadratic in
  // the nesting depth ('<div>'.repeat(500_000), 2.5 MB, took 97 s). pages.ts now uses its tokenizer alone.
  it('reads a page of 1,000,000 nested open elements, and 200,000 nested links, quickly', () => {
    expect(quickly(() => parseHtmlPage('<div>'.repeat(1_000_000), 'https://idx.test/simple/foo/'))).toEqual([]);
    const nested = `<a href="foo-1.0.tar.gz#sha256=${'a'.repeat(64)}">`.repeat(200_000);
    const links = quickly(() => parseHtmlPage(nested, 'https://idx.test/simple/foo/', { project: 'foo', maxLinks: 200_000 }));
    expect(links).toHaveLength(200_000);
    expect(links[0]).toMatchObject({ filename: 'foo-1.0.tar.gz', sha256: 'a'.repeat(64) });
  });

  it('refuses a JSON page nested 100,000 deep as not a page, without a stack overflow', () => {
    expect(() => quickly(() => parseJsonPage(`{"files": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 'https://idx.test/simple/foo/'))).not.toThrow();
    expect(() => quickly(() => parseJsonPage(`{"files": {"a": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}`, 'https://idx.test/simple/foo/'))).toThrow(
      ZodError,
    );
  });
});
