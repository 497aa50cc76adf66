/*
 * A `requirements.in` for `lock`: the projects to resolve, by name, extras, version range and
 * marker. Its text is never handed to pip as it is: what pip sees in the sandbox is rendered from
 * what was read here, so nothing can send pip anywhere but the index proxy. Refused, before any
 * container starts: editable, URL, VCS and path requirements, per-requirement options (--hash,
 * --config-settings), other files (-r, -c), and index options (-i, --extra-index-url, --find-links):
 * where a run fetches from is the command line's (--index-url) or pip's configuration, as for
 * every other command. Kept: --pre, --prefer-binary, --only-binary and --no-binary, which change
 * what pip picks and are passed to it as arguments.
 */
import { readInputFile } from '../core/read-input.js';
import { InputError } from '../errors.js';
import { logicalLines } from './lines.js';
import { canonicalMarker } from './marker.js';
import { isValidProjectName, normalizeName } from './normalize.js';
import { parseOptionsLine } from './options.js';
import { pipOptionsOf } from './pip-options.js';
import { invalid, LineProblem, show } from './problem.js';
import type { PipOptionLine, PipOptions } from './types.js';
import { isPep440Version } from './version.js';

export interface InputRequirement {
  /** PEP 503 normalised. */
  name: string;
  rawName: string;
  /** Normalised (PEP 685), without repeats. */
  extras: string[];
  /** `>=2,<3`, normalised to no spaces; empty for any version. */
  specifier: string;
  marker: string | null;
  line: number;
}

export interface RequirementsIn {
  file: string;
  requirements: InputRequirement[];
  pipOptions: PipOptions;
}

/** The options a requirements.in may hold, all of which change only which files pip picks. */
const KEPT = new Set(['--pre', '--prefer-binary', '--only-binary', '--no-binary']);

const INDEX = 'give the index on the command line (--index-url, --extra-index-url) or in pip.conf instead, so the proxy knows its upstreams';
const REFUSED = new Map<string, string>([
  ['-i', INDEX],
  ['--index-url', INDEX],
  ['--extra-index-url', INDEX],
  ['--no-index', INDEX],
  ['-f', 'pip would fetch files around the index proxy; serve them from an index and pass --index-url'],
  ['--find-links', 'pip would fetch files around the index proxy; serve them from an index and pass --index-url'],
  ['--trusted-host', 'it turns off TLS certificate checks; remove it'],
  ['-r', 'it pulls in another file; merge the files into one requirements.in'],
  ['--requirement', 'it pulls in another file; merge the files into one requirements.in'],
  ['-c', 'it pulls in another file; merge the constraints into the requirements.in'],
  ['--constraint', 'it pulls in another file; merge the constraints into the requirements.in'],
  ['-e', 'editable requirements are local checkouts, not released files an index serves; lock a released version'],
  ['--editable', 'editable requirements are local checkouts, not released files an index serves; lock a released version'],
]);

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/u;
const NAME_PREFIX = /^[A-Za-z0-9][A-Za-z0-9._-]*/;
const CLAUSE = /^(===|==|!=|<=|>=|~=|<|>)\s*(\S+)$/;
/** Where pip would read a file or a URL instead of asking the index: a scheme, a path, an archive name. */
const NOT_A_NAME = /^[a-z][a-z0-9+.-]*:|[/\\]|^\.|\.(whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz)$/i;

/** Pure: reads requirements.in text. `file` only labels the result and the error messages. */
export function parseRequirementsIn(text: string, file: string): RequirementsIn {
  const requirements: InputRequirement[] = [];
  const options: PipOptionLine[] = [];
  for (const logical of logicalLines(text)) {
    try {
      if (logical.unterminated) invalid('the file ends inside a line continuation (the last line ends with a backslash); remove that backslash');
      if (logical.commentedContinuation) invalid('a line with a # comment ends with a backslash; move the comment to its own line');
      const control = CONTROL.exec(logical.text);
      if (control) invalid(`control character ${show(control[0])} in '${show(logical.text)}'; a requirements.in is plain text`);
      if (logical.text.startsWith('-')) options.push(...optionsOf(logical.text).map((option) => ({ ...option, line: logical.line })));
      else requirements.push({ ...requirementOf(logical.text), line: logical.line });
    } catch (error: unknown) {
      if (error instanceof LineProblem) throw new InputError('lock.invalid', `${file}:${logical.line}: ${error.message}`);
      throw error;
    }
  }
  if (requirements.length === 0) throw new InputError('lock.invalid', `${file}: names no requirement; write one project per line (e.g. requests>=2)`);
  return { file, requirements, pipOptions: pipOptionsOf(options) };
}

export async function readRequirementsIn(file: string): Promise<RequirementsIn> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await readInputFile(file));
  } catch (error: unknown) {
    const why = error instanceof TypeError ? 'it is not valid UTF-8' : error instanceof Error ? error.message : String(error);
    throw new InputError('lock.unreadable', `${file}: cannot read the requirements (${why})`, { cause: error });
  }
  return parseRequirementsIn(text, file);
}

/** The requirements file pip reads in the sandbox: one checked requirement per line, nothing else. */
export function renderRequirementsIn(input: RequirementsIn): string {
  return input.requirements
    .map((req) => {
      const extras = req.extras.length > 0 ? `[${req.extras.join(',')}]` : '';
      return `${req.rawName}${extras}${req.specifier}${req.marker === null ? '' : ` ; ${canonicalMarker(req.marker)}`}\n`;
    })
    .join('');
}

function optionsOf(text: string): Array<Exclude<ReturnType<typeof parseOptionsLine>[number], { url: string }>> {
  for (const token of text.split(/\s+/)) {
    if (!token.startsWith('-')) continue;
    const name = token.startsWith('--') ? token.split('=', 1)[0]! : token;
    const why = REFUSED.get(name);
    if (why !== undefined) invalid(`${name} is not allowed in a requirements.in for lock: ${why}`);
    if (!KEPT.has(name)) invalid(`unknown option ${show(name)}; a requirements.in for lock may hold only ${[...KEPT].join(', ')}`);
  }
  return parseOptionsLine(text).flatMap((option) => ('url' in option ? [] : [option]));
}

function requirementOf(text: string): Omit<InputRequirement, 'line'> {
  // Like pip: the requirement ends at the first whitespace-preceded token starting with `-`.
  const optionStart = /\s-/.exec(text);
  if (optionStart) {
    const option = text.slice(optionStart.index).trim().split(/[\s=]/, 1)[0]!;
    invalid(`${show(option)} after a requirement is not allowed: lock fetches every file by name through its index proxy and hashes it itself`);
  }
  const semicolon = text.indexOf(';');
  const head = (semicolon < 0 ? text : text.slice(0, semicolon)).trim();
  const marker = semicolon < 0 ? null : text.slice(semicolon + 1).trim();
  if (marker === '') invalid(`${show(head)} has an empty environment marker after ';'`);
  // Checked here (it throws on a marker pip would not read); pip gets its canonical rendering.
  const rendered = marker === null ? null : canonicalMarker(marker);
  if (head.includes('@') || NOT_A_NAME.test(head.split(/[\s<>=!~[(]/, 1)[0] ?? '')) {
    invalid(`${show(head)} is a URL, VCS or path requirement; lock resolves only released projects from the index, by name`);
  }
  const rawName = NAME_PREFIX.exec(head)?.[0] ?? '';
  if (!isValidProjectName(rawName)) invalid(`'${show(head)}' does not start with a valid project name (PEP 508)`);
  let rest = head.slice(rawName.length).trim();
  let extras: string[] = [];
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) invalid(`${show(head)} has an unclosed '[' in its extras`);
    const inside = rest.slice(1, close).trim();
    extras = inside === '' ? [] : inside.split(',').map((extra) => extra.trim());
    for (const extra of extras) if (!isValidProjectName(extra)) invalid(`'${show(extra)}' in ${show(head)} is not a valid extra name`);
    extras = [...new Set(extras.map(normalizeName))];
    rest = rest.slice(close + 1).trim();
  }
  if (rest.startsWith('(')) {
    if (!rest.endsWith(')')) invalid(`${show(head)} has an unclosed '(' in its version`);
    rest = rest.slice(1, -1).trim();
  }
  return {
    name: normalizeName(rawName),
    rawName,
    extras,
    specifier:
      rest === ''
        ? ''
        : rest
            .split(',')
            .map((clause) => checkedClause(clause.trim(), head))
            .join(','),
    marker: rendered,
  };
}

/** One version clause, checked as pip's `packaging` would accept it. */
function checkedClause(clause: string, head: string): string {
  const match = CLAUSE.exec(clause);
  if (!match) invalid(`'${show(clause)}' in ${show(head)} is not a version specifier`);
  const [, op, version] = match as unknown as [string, string, string];
  if (op === '===') return `${op}${version}`;
  const wildcard = (op === '==' || op === '!=') && version.endsWith('.*');
  if (!isPep440Version(wildcard ? version.slice(0, -2) : version)) invalid(`'${show(version)}' in ${show(head)} is not a valid version (PEP 440)`);
  return `${op}${version}`;
}
