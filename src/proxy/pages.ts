import { createHash } from 'node:crypto';
import { Tokenizer } from 'htmlparser2';
import { z } from 'zod';
import { isSafeFilename, normalizeName, versionFromFilename } from './names.js';

/** One file as an upstream index lists it. URLs are absolute and still carry any credentials. */
export interface UpstreamLink {
  filename: string;
  url: string;
  /** Lowercase hex, or null when the upstream declares no sha256. */
  sha256: string | null;
  requiresPython: string | null;
  /** null: not yanked; otherwise the reason, possibly empty. */
  yanked: string | null;
}

/** One file as the proxy lists it. */
export interface PageFile {
  filename: string;
  sha256: string;
  requiresPython: string | null;
  yanked: string | null;
}

export const PEP691_JSON = 'application/vnd.pypi.simple.v1+json';
export const PEP691_HTML = 'application/vnd.pypi.simple.v1+html';
/** What the proxy sends upstream (and what pip sends the proxy, give or take the q values). */
export const UPSTREAM_ACCEPT = `${PEP691_JSON}, ${PEP691_HTML};q=0.2, text/html;q=0.1`;

const HASH_FRAGMENT = /(?:^|&)sha256=([0-9a-fA-F]{64})(?:&|$)/;

function linkFrom(href: string, base: URL, extra: Omit<UpstreamLink, 'filename' | 'url' | 'sha256'>, declaredName?: string): UpstreamLink | null {
  let url: URL;
  try {
    url = new URL(href, base);
  } catch {
    return null;
  }
  const fragment = url.hash.replace(/^#/, '');
  const sha = HASH_FRAGMENT.exec(fragment)?.[1]?.toLowerCase() ?? null;
  url.hash = '';
  const lastSegment = url.pathname.split('/').pop() ?? '';
  let filename: string;
  try {
    // pip takes the filename from the URL, not from the anchor text or JSON `filename`.
    filename = decodeURIComponent(lastSegment) || declaredName || '';
  } catch {
    return null;
  }
  if (!filename) return null;
  return { filename, url: url.href, sha256: sha, ...extra };
}

/**
 * The most links a page may keep after filtering. A page's text is capped (64 MiB), but a 60 MB
 * page of 500,000 short links held as UpstreamLink objects took the proxy to 576 MB. PyPI's
 * busiest projects list far fewer files: grpcio, with about 250 releases of up to 60 wheels each,
 * is about 15,000 by that count; a locked project keeps only its locked files (`PageFilter.keep`).
 * 50,000 kept links are about 25 MB. Past it the page is refused, not cut: a cut page would hide
 * the newest files (PyPI lists oldest first) and pip would quietly resolve to an old one.
 */
export const MAX_PAGE_LINKS = 50_000;

/** A page that keeps more than its cap of links. */
export class PageTooLarge extends Error {
  constructor(
    readonly max: number,
    project: string | undefined,
  ) {
    super(`the page lists more than ${max} files${project === undefined ? '' : ` of ${project}`}; refused`);
  }
}

/** What a parser keeps of a page. Links are checked one by one as they are read, so dropped ones are never held. */
export interface PageFilter {
  /** The page's project, normalised: links to another project's files are dropped, as pip ignores them. */
  project?: string;
  /** A further test, e.g. only locked sha256s or allowed schemes. */
  keep?: (link: UpstreamLink) => boolean;
  /** More kept links than this throws PageTooLarge; MAX_PAGE_LINKS unless set. */
  maxLinks?: number;
}

const WHEEL_LIKE = /\.(?:whl|egg)$/i;

/**
 * Whether a filename is a distribution of `project` (normalised): the project field of a wheel or
 * egg name, or the prefix of an sdist name as pip's `_extract_version_from_fragment` reads it.
 * pip skips every other link ("wrong project name", "unsupported archive format").
 */
export function filenameBelongsTo(project: string, filename: string): boolean {
  if (WHEEL_LIKE.test(filename)) return normalizeName(filename.split('-')[0] ?? '') === project;
  return versionFromFilename(project, filename) !== null;
}

/** A collector for a filter: `add` keeps a link or drops it, and throws PageTooLarge past the cap. */
function collector(filter: PageFilter): { links: UpstreamLink[]; add(link: UpstreamLink): void } {
  const max = filter.maxLinks ?? MAX_PAGE_LINKS;
  const links: UpstreamLink[] = [];
  return {
    links,
    add(link) {
      if (filter.project !== undefined && !filenameBelongsTo(filter.project, link.filename)) return;
      if (filter.keep && !filter.keep(link)) return;
      if (links.length >= max) throw new PageTooLarge(max, filter.project);
      links.push(link);
    },
  };
}

/**
 * Parse a PEP 503 page: every `<a href>`, honouring `<base href>` as pip does. Attribute values
 * come back HTML-unescaped. Links whose filename is unsafe are still returned; callers decide.
 */
/**
 * Every start tag with its attributes (names lowercased, entities decoded, the first of a repeated
 * attribute kept), from htmlparser2's tokenizer alone. Its Parser keeps a stack of open elements
 * that made a page of nested tags quadratic (5 MB of `<div>` took 335 s, with the event loop
 * blocked); the tokenizer is one linear pass, and a page needs no tree.
 */
function startTags(html: string, onTag: (name: string, attribs: Record<string, string>) => void): void {
  let name = '';
  let attribs: Record<string, string> = Object.create(null) as Record<string, string>;
  let attribName = '';
  let attribValue = '';
  const ignore = (): void => {};
  const tokenizer = new Tokenizer(
    { decodeEntities: true },
    {
      onopentagname(start, end) {
        name = html.slice(start, end).toLowerCase();
        attribs = Object.create(null) as Record<string, string>;
      },
      onattribname(start, end) {
        attribName = html.slice(start, end).toLowerCase();
        attribValue = '';
      },
      onattribdata(start, end) {
        attribValue += html.slice(start, end);
      },
      onattribentity(codepoint) {
        attribValue += String.fromCodePoint(codepoint);
      },
      onattribend() {
        if (!Object.hasOwn(attribs, attribName)) attribs[attribName] = attribValue;
      },
      onopentagend() {
        onTag(name, attribs);
      },
      onselfclosingtag() {
        onTag(name, attribs);
      },
      onclosetag: ignore,
      oncdata: ignore,
      oncomment: ignore,
      ondeclaration: ignore,
      onend: ignore,
      onprocessinginstruction: ignore,
      ontext: ignore,
      ontextentity: ignore,
    },
  );
  tokenizer.write(html);
  tokenizer.end();
}

export function parseHtmlPage(html: string, pageUrl: string, filter: PageFilter = {}): UpstreamLink[] {
  let base = new URL(pageUrl);
  let baseSeen = false;
  const kept = collector(filter);
  startTags(html, (name, attribs) => {
    if (name === 'base' && !baseSeen && attribs.href !== undefined) {
      baseSeen = true;
      try {
        base = new URL(attribs.href, base);
      } catch {
        // pip ignores an unusable base too
      }
      return;
    }
    if (name !== 'a' || attribs.href === undefined) return;
    const link = linkFrom(attribs.href, base, {
      requiresPython: attribs['data-requires-python'] ?? null,
      yanked: attribs['data-yanked'] ?? null,
    });
    if (link) kept.add(link);
  });
  return kept.links;
}

const JsonFile = z.object({
  filename: z.string().optional(),
  url: z.string(),
  hashes: z.record(z.string(), z.unknown()).optional(),
  'requires-python': z.string().nullish(),
  yanked: z.union([z.boolean(), z.string()]).nullish(),
});
const JsonPage = z.object({ files: z.array(z.unknown()) });

/** Parse a PEP 691 JSON page. Entries that do not fit the schema are skipped one by one. */
export function parseJsonPage(text: string, pageUrl: string, filter: PageFilter = {}): UpstreamLink[] {
  const page = JsonPage.parse(JSON.parse(text));
  const base = new URL(pageUrl);
  const kept = collector(filter);
  for (const raw of page.files) {
    const parsed = JsonFile.safeParse(raw);
    if (!parsed.success) continue;
    const file = parsed.data;
    const yanked = file.yanked === true ? '' : typeof file.yanked === 'string' ? file.yanked : null;
    const link = linkFrom(file.url, base, { requiresPython: file['requires-python'] ?? null, yanked }, file.filename);
    if (!link) continue;
    const declared = file.hashes?.sha256;
    // The JSON hash takes precedence over a URL fragment, as in pip.
    link.sha256 = typeof declared === 'string' && /^[0-9a-fA-F]{64}$/.test(declared) ? declared.toLowerCase() : link.sha256;
    kept.add(link);
  }
  return kept.links;
}

/** Pick a parser from the response's content type, sniffing when it says nothing useful. */
/** `text/html` of `text/html; charset=utf-8`, or null when there is none. */
export function mediaType(contentType: string | null): string | null {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return type ? type : null;
}

export function parsePage(text: string, contentType: string | null, pageUrl: string, filter: PageFilter = {}): UpstreamLink[] {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const json = type === PEP691_JSON || type === 'application/json' || (!type.includes('html') && text.trimStart().startsWith('{'));
  return json ? parseJsonPage(text, pageUrl, filter) : parseHtmlPage(text, pageUrl, filter);
}

// ---------------------------------------------------------------------------------------------
// Rendering. Filenames and requires-python come from upstream and are hostile: escape everything.

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The proxy URL of a file, relative to a project page at `/simple/<name>/`. */
export function fileHref(file: Pick<PageFile, 'filename' | 'sha256'>): string {
  return `../../files/${file.sha256}/${encodeURIComponent(file.filename)}#sha256=${file.sha256}`;
}

export function renderProjectHtml(project: string, files: PageFile[]): string {
  const anchors = files.map((f) => {
    let attrs = `href="${escapeHtml(fileHref(f))}"`;
    if (f.requiresPython !== null) attrs += ` data-requires-python="${escapeHtml(f.requiresPython)}"`;
    if (f.yanked !== null) attrs += ` data-yanked="${escapeHtml(f.yanked)}"`;
    return `    <a ${attrs}>${escapeHtml(f.filename)}</a><br/>\n`;
  });
  return (
    '<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.0">\n' +
    `    <title>Links for ${escapeHtml(project)}</title>\n  </head>\n  <body>\n` +
    `    <h1>Links for ${escapeHtml(project)}</h1>\n${anchors.join('')}  </body>\n</html>\n`
  );
}

export function renderProjectJson(project: string, files: PageFile[]): string {
  return JSON.stringify({
    meta: { 'api-version': '1.0' },
    name: project,
    files: files.map((f) => ({
      filename: f.filename,
      url: fileHref(f),
      hashes: { sha256: f.sha256 },
      ...(f.requiresPython !== null ? { 'requires-python': f.requiresPython } : {}),
      ...(f.yanked !== null ? { yanked: f.yanked === '' ? true : f.yanked } : {}),
    })),
  });
}

export function renderIndexHtml(projects: string[]): string {
  const anchors = projects.map((p) => `    <a href="${escapeHtml(encodeURIComponent(p))}/">${escapeHtml(p)}</a><br/>\n`);
  return (
    '<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.0">\n' +
    `    <title>Simple index</title>\n  </head>\n  <body>\n${anchors.join('')}  </body>\n</html>\n`
  );
}

export function renderIndexJson(projects: string[]): string {
  return JSON.stringify({ meta: { 'api-version': '1.0' }, projects: projects.map((name) => ({ name })) });
}

// ---------------------------------------------------------------------------------------------
// Content negotiation (PEP 691).

export type PageFormat = 'json' | 'v1-html' | 'text-html';

export const CONTENT_TYPES: Record<PageFormat, string> = {
  json: PEP691_JSON,
  'v1-html': PEP691_HTML,
  'text-html': 'text/html; charset=utf-8',
};

const OFFERS: Array<{ format: PageFormat; type: string }> = [
  { format: 'text-html', type: 'text/html' },
  { format: 'v1-html', type: PEP691_HTML },
  { format: 'json', type: PEP691_JSON },
];

/**
 * Choose the page format for an `Accept` header: highest q wins, then an explicit media type over
 * a wildcard, then HTML (the format every client understands). No header means HTML.
 */
export function negotiate(accept: string | undefined): PageFormat {
  if (!accept) return 'text-html';
  const ranges = accept.split(',').flatMap((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    if (!type) return [];
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m?.[1] !== undefined) q = Math.min(1, Number(m[1]) || 0);
    }
    return [{ type, q }];
  });
  let best: { format: PageFormat; q: number; specific: number } = { format: 'text-html', q: 0, specific: -1 };
  for (const offer of OFFERS) {
    let q = -1;
    let specific = -1;
    const [major] = offer.type.split('/');
    for (const r of ranges) {
      const s = r.type === offer.type ? 2 : r.type === `${major}/*` ? 1 : r.type === '*/*' ? 0 : -1;
      if (s > specific) {
        specific = s;
        q = r.q;
      }
    }
    if (q > best.q || (q === best.q && q > 0 && specific > best.specific)) best = { format: offer.format, q, specific };
  }
  return best.q > 0 ? best.format : 'text-html';
}

/** A strong ETag over a rendered body. */
export function etagOf(body: string | Buffer): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
}

/** RFC 9110 If-None-Match: `*` or a list of (possibly weak) tags, compared weakly. */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/** Filter helper kept next to the format: only links the proxy may list at all. */
export function listable(link: UpstreamLink): link is UpstreamLink & { sha256: string } {
  return link.sha256 !== null && isSafeFilename(link.filename);
}
