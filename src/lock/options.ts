/*
 * A line that starts with `-` holds options (`--index-url URL`, `-i URL`, `--pre` …). Each option
 * the file may hold is listed below; anything else is an error, so nothing is ignored silently.
 */
import { isValidProjectName } from './normalize.js';
import { invalid, show } from './problem.js';
import type { PipOption } from './types.js';

export type IndexOption = { option: 'index-url' | 'extra-index-url'; url: string };

export type LineOption = IndexOption | PipOption;

type Rule =
  /** An index URL, recorded in the plan. */
  | { kind: 'index'; option: IndexOption['option'] }
  /** Changes which files pip picks: recorded in the plan, and passed to pip by the sandbox. */
  | { kind: 'flag'; option: 'pre' | 'prefer-binary' }
  | { kind: 'format'; option: 'only-binary' | 'no-binary' }
  /** Already in force: the sandbox always runs pip with --require-hashes. */
  | { kind: 'always' }
  /** Refused, with the reason. */
  | { kind: 'reject'; why: string }
  | { kind: 'editable' };

const BYPASSES_PROXY = 'would let pip fetch files around the index proxy; remove it and serve those files from an index';
const OTHER_FILE = 'pulls in another file that is not vetted with this one; merge everything into one lockfile (pip-compile, uv export)';
const TLS_OFF = 'turns off TLS certificate checks for a host; remove it';

const RULES = new Map<string, Rule>([
  ['--index-url', { kind: 'index', option: 'index-url' }],
  ['-i', { kind: 'index', option: 'index-url' }],
  ['--extra-index-url', { kind: 'index', option: 'extra-index-url' }],
  ['--pre', { kind: 'flag', option: 'pre' }],
  ['--prefer-binary', { kind: 'flag', option: 'prefer-binary' }],
  ['--require-hashes', { kind: 'always' }],
  ['--no-binary', { kind: 'format', option: 'no-binary' }],
  ['--only-binary', { kind: 'format', option: 'only-binary' }],
  ['--find-links', { kind: 'reject', why: BYPASSES_PROXY }],
  ['-f', { kind: 'reject', why: BYPASSES_PROXY }],
  ['--trusted-host', { kind: 'reject', why: TLS_OFF }],
  ['-r', { kind: 'reject', why: OTHER_FILE }],
  ['--requirement', { kind: 'reject', why: OTHER_FILE }],
  ['-c', { kind: 'reject', why: OTHER_FILE }],
  ['--constraint', { kind: 'reject', why: OTHER_FILE }],
  ['-e', { kind: 'editable' }],
  ['--editable', { kind: 'editable' }],
]);

const ALLOWED = [...RULES].filter(([, rule]) => rule.kind !== 'reject' && rule.kind !== 'editable').map(([name]) => name);

/** `--name=value` splits at `=`; short options (`-i`) take their value from the next token only. */
function splitToken(token: string): { name: string; inline: string | undefined } {
  const eq = token.startsWith('--') ? token.indexOf('=') : -1;
  return eq < 0 ? { name: token, inline: undefined } : { name: token.slice(0, eq), inline: token.slice(eq + 1) };
}

export function parseOptionsLine(text: string): LineOption[] {
  const tokens = text.split(/\s+/);
  const found: LineOption[] = [];
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i] ?? '';
    if (!token.startsWith('-')) invalid(`unexpected '${show(token)}' on an options line`);
    const { name, inline } = splitToken(token);
    const rule = RULES.get(name);

    if (!rule) {
      if (name === '--hash') invalid('--hash must follow its requirement on the same line; is a backslash missing at the end of the line before?');
      invalid(`unknown option ${show(name)}; a lockfile may hold only ${ALLOWED.join(', ')}`);
    }
    if (rule.kind === 'reject') invalid(`${name} is not allowed in a lockfile: it ${rule.why}`);
    if (rule.kind === 'editable') {
      invalid(
        `${show(text)} is an editable requirement; the sandbox installs only name==version requirements with --hash, fetched through its index proxy (uv export: add --no-emit-project)`,
      );
    }
    if (rule.kind === 'flag' || rule.kind === 'always') {
      if (inline !== undefined) invalid(`${name} takes no value`);
      if (rule.kind === 'flag') found.push({ option: rule.option });
      continue;
    }

    let value = inline;
    if (value === undefined) {
      i += 1;
      value = tokens[i];
    }
    if (value === undefined || value === '' || value.startsWith('-')) invalid(`${name} needs a value`);
    found.push(
      rule.kind === 'index' ? { option: rule.option, url: checkIndexUrl(name, value) } : { option: rule.option, value: checkFormatControl(name, value) },
    );
  }
  return found;
}

function checkIndexUrl(option: string, url: string): string {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    invalid(`${option} needs an http(s):// or file:// URL, got '${show(url)}'`);
  }
  if (!['http:', 'https:', 'file:'].includes(protocol)) {
    invalid(`${option} needs an http(s):// or file:// URL, got '${show(url)}'`);
  }
  return url;
}

/**
 * pip splits the value at commas and takes each item as `:all:`, `:none:` or a project name. pip
 * itself takes any other text as a name, so a typo (`:al:`, `:ALL:`, `numpy;`) would quietly name
 * no project, or, for `:ALL:`, act like `:all:` without clearing the other set; refuse it instead.
 */
function checkFormatControl(option: string, value: string): string {
  for (const item of value.split(',')) {
    if (item === ':all:' || item === ':none:' || isValidProjectName(item)) continue;
    if (item === '') invalid(`${option} ${show(value)} has an empty item; separate the names with single commas`);
    invalid(`'${show(item)}' in ${option} ${show(value)} is not :all:, :none: or a project name (PEP 508)`);
  }
  return value;
}
