/*
 * One requirement line: `name[extras]==version ; marker --hash=sha256:… --hash=sha256:…`.
 *
 * Like pip, the line splits at the first whitespace-preceded token that starts with `-`: what comes
 * before is the requirement (`spec`), what comes after are its options. The spec splits at `;` into
 * the `head` (name, extras, version) and the environment marker.
 */
import { canonicalMarker } from './marker.js';
import { isValidProjectName, normalizeName } from './normalize.js';
import { invalid, LineProblem, show } from './problem.js';
import { isPep440Version } from './version.js';

export interface ParsedRequirement {
  rawName: string;
  name: string;
  version: string;
  extras: string[];
  /** The marker rendered from its parse (canonicalMarker), never the text as written; null without one. */
  marker: string | null;
  /** The marker in canonical form, to compare markers; null without a marker. */
  markerKey: string | null;
  sha256: string[];
  /** The head as written (`requests==2.31.0`), for messages. */
  head: string;
}

const NOT_FROM_INDEX = 'the sandbox installs only name==version requirements with --hash, fetched through its index proxy';

export function parseRequirementLine(text: string): ParsedRequirement {
  const { spec, options } = splitOptions(text);
  const semicolon = spec.indexOf(';');
  const head = (semicolon < 0 ? spec : spec.slice(0, semicolon)).trim();
  const markerText = semicolon < 0 ? null : spec.slice(semicolon + 1).trim();

  rejectNonIndexRequirement(head);
  const { rawName, extras, rest } = parseNameAndExtras(head);
  const version = parsePin(rest, head);
  if (markerText === '') invalid(`${show(head)} has an empty environment marker after ';'`);
  const markerKey = markerText === null ? null : canonicalMarker(markerText);
  const sha256 = parseHashOptions(options);
  if (sha256.length === 0) {
    throw new LineProblem('lock.unhashed', `${show(head)} has no --hash; every requirement needs a sha256 hash (pip-compile --generate-hashes, uv export)`);
  }
  return { rawName, name: normalizeName(rawName), version, extras, marker: markerKey, markerKey, sha256, head };
}

function splitOptions(text: string): { spec: string; options: string } {
  const optionStart = /\s-/.exec(text);
  if (!optionStart) return { spec: text, options: '' };
  return { spec: text.slice(0, optionStart.index), options: text.slice(optionStart.index) };
}

// ---------------------------------------------------------------------------------------------
// VCS, URL and local path requirements

/**
 * `name @ …` or `name[extras] @ …`, the PEP 508 direct reference form. The whitespace after the
 * extras sits inside their optional group so that two `\s*` never meet (quadratic backtracking).
 */
const DIRECT_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\]\s*)?@(.*)$/s;
const VCS_SCHEME = /^(git|hg|svn|bzr)\+/i;
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const FILE_SCHEME = /^file:/i;
/** The archive suffixes pip treats as a file to install rather than a project name. */
const ARCHIVE = /\.(whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz|tlz|tar\.lz|tar\.lzma)$/i;

type Location = 'VCS' | 'URL' | 'local path';

function schemeKind(target: string): Location | null {
  if (VCS_SCHEME.test(target)) return 'VCS';
  if (FILE_SCHEME.test(target)) return 'local path';
  if (URL_SCHEME.test(target)) return 'URL';
  return null;
}

/** pip's _looks_like_path(), plus archives: a path separator, a leading dot, or an archive name. */
function looksLikePath(target: string): boolean {
  return /[/\\]/.test(target) || target.startsWith('.') || ARCHIVE.test(target);
}

function rejectNonIndexRequirement(head: string): void {
  const direct = DIRECT_REFERENCE.exec(head);
  let kind: Location | null;
  if (direct) {
    const target = (direct[1] ?? '').trim();
    kind = schemeKind(target) ?? (looksLikePath(target) ? 'local path' : 'URL');
  } else {
    // `requests>=2` is a name with a specifier, not a path, even though it may contain a `/` or `.`.
    const firstWord = head.split(/\s/, 1)[0] ?? '';
    const isPath = !/[<>=!~]/.test(firstWord) && looksLikePath(firstWord);
    kind = schemeKind(firstWord) ?? (isPath ? 'local path' : null);
  }
  if (kind) invalid(`${show(head)} is a ${kind} requirement; ${NOT_FROM_INDEX}`);
}

// ---------------------------------------------------------------------------------------------
// name, extras, version

/** The longest run that may be a name; isValidProjectName() then checks its ends. */
const NAME_PREFIX = /^[A-Za-z0-9][A-Za-z0-9._-]*/;

function parseNameAndExtras(head: string): { rawName: string; extras: string[]; rest: string } {
  const rawName = NAME_PREFIX.exec(head)?.[0] ?? '';
  if (!isValidProjectName(rawName)) invalid(`'${show(head)}' does not start with a valid project name (PEP 508)`);
  const afterName = head.slice(rawName.length).trimStart();
  if (!afterName.startsWith('[')) return { rawName, extras: [], rest: afterName };

  const close = afterName.indexOf(']');
  if (close < 0) invalid(`${show(head)} has an unclosed '[' in its extras`);
  return { rawName, extras: parseExtras(afterName.slice(1, close), head), rest: afterName.slice(close + 1) };
}

/** Extras are compared normalised (PEP 685), so they are stored that way, without repeats. */
function parseExtras(inside: string, head: string): string[] {
  if (inside.trim() === '') return [];
  const extras = inside.split(',').map((extra) => extra.trim());
  for (const extra of extras) {
    if (!isValidProjectName(extra)) invalid(`'${show(extra)}' in ${show(head)} is not a valid extra name`);
  }
  return [...new Set(extras.map(normalizeName))];
}

const CLAUSE = /^(===|==|!=|<=|>=|~=|<|>)\s*(.*)$/s;

function unpinned(head: string, reason: string): never {
  throw new LineProblem('lock.unpinned', `${show(head)} is not pinned: ${reason}; pin one exact version with == (pip-compile, uv export)`);
}

/** `rest` is what follows the name and extras: `==1.0`, `(==1.0)`, `>=2,<3` or nothing. */
function parsePin(rest: string, head: string): string {
  let specifier = rest.trim();
  if (specifier.startsWith('(')) {
    if (!specifier.endsWith(')')) invalid(`${show(head)} has an unclosed '(' in its version`);
    specifier = specifier.slice(1, -1).trim();
  }
  if (specifier === '') unpinned(head, 'it has no version');

  const clauses = specifier.split(',').map((text) => {
    const match = CLAUSE.exec(text.trim());
    if (!match?.[1] || !match[2]) invalid(`'${show(text.trim())}' in ${show(head)} is not a version specifier`);
    return { op: match[1], version: match[2] };
  });
  const range = clauses.find(({ op }) => op !== '==' && op !== '===');
  if (range) unpinned(head, `'${range.op}' allows a range of versions`);
  const [pin] = clauses;
  if (clauses.length > 1 || !pin) unpinned(head, 'it has several version specifiers');
  if (pin.version.includes('*')) unpinned(head, `'${pin.op}${show(pin.version)}' is a wildcard`);

  // `===` compares strings verbatim (PEP 440 arbitrary equality), so any single word will do.
  const valid = pin.op === '==' ? isPep440Version(pin.version) : !/[\s;]/.test(pin.version);
  if (!valid) invalid(`'${show(pin.version)}' in ${show(head)} is not a valid version (PEP 440)`);
  return pin.version;
}

// ---------------------------------------------------------------------------------------------
// --hash options

const SHA256_HEX = /^[0-9a-f]{64}$/i;

/** `--hash=sha256:…` and `--hash sha256:…`, as often as needed; no other option may follow a requirement. */
function parseHashOptions(options: string): string[] {
  const tokens = options.trim() === '' ? [] : options.trim().split(/\s+/);
  const digests: string[] = [];
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i] ?? '';
    let value: string | undefined;
    if (token === '--hash') {
      i += 1;
      value = tokens[i];
      if (value === undefined || value.startsWith('-')) invalid('--hash needs a value: --hash=sha256:<64 hex digits>');
    } else if (token.startsWith('--hash=')) {
      value = token.slice('--hash='.length);
    } else if (token.startsWith('-')) {
      invalid(`${show(token.split('=', 1)[0] ?? token)} is not allowed after a requirement; only --hash options may follow it`);
    } else {
      invalid(`unexpected '${show(token)}' among the --hash options`);
    }
    digests.push(parseHash(value));
  }
  return [...new Set(digests)];
}

function parseHash(value: string): string {
  const colon = value.indexOf(':');
  if (colon < 0) invalid(`--hash=${show(value)} is malformed; write --hash=sha256:<64 hex digits>`);
  const algorithm = value.slice(0, colon);
  const digest = value.slice(colon + 1);
  if (algorithm !== 'sha256') {
    invalid(`--hash=${show(algorithm)}:… uses ${show(algorithm)}; only sha256 hashes are accepted (pip-compile --generate-hashes and uv export write sha256)`);
  }
  if (!SHA256_HEX.test(digest)) invalid(`--hash=sha256:${show(digest)} is not a sha256 digest; expected 64 hex digits`);
  return digest.toLowerCase();
}
