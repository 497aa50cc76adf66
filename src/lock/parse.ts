/*
 * Parses requirements files with hashes, as pip-compile --generate-hashes, uv export and poetry
 * export write them, into a LockPlan (readLock hands pylock.toml files to pylock.ts). Every requirement must be pinned with == and carry at least
 * one sha256 hash; anything pip could fetch from somewhere other than the index proxy is refused.
 */
import { readInputFile } from '../core/read-input.js';
import { basename } from 'node:path';

import { InputError } from '../errors.js';
import { logicalLines, type LogicalLine } from './lines.js';
import { parseOptionsLine, type IndexOption, type LineOption } from './options.js';
import { noPipOptions, pipOptionsOf } from './pip-options.js';
import { invalid, LineProblem, show } from './problem.js';
import { parsePylock } from './pylock.js';
import { parseRequirementLine, type ParsedRequirement } from './requirement.js';
import type { LockedRequirement, LockPlan, PipOptionLine } from './types.js';

export { normalizeName } from './normalize.js';

interface ParseState {
  plan: LockPlan;
  indexUrlLine: number | null;
  /** --pre, --prefer-binary, --only-binary, --no-binary in file order; combined at the end. */
  pipOptions: PipOptionLine[];
  /** Requirements by name and canonical marker, to find conflicting duplicates. */
  seen: Map<string, { line: number; head: string }>;
}

/** Pure: parses lockfile text. `file` only labels the plan and the error messages. */
export function parseLock(text: string, file: string): LockPlan {
  const state: ParseState = {
    plan: { file, requirements: [], indexUrl: null, extraIndexUrls: [], pipOptions: noPipOptions() },
    indexUrlLine: null,
    pipOptions: [],
    seen: new Map(),
  };
  for (const logical of logicalLines(text)) {
    try {
      applyLine(state, logical);
    } catch (error: unknown) {
      if (error instanceof LineProblem) throw new InputError(error.code, `${file}:${logical.line}: ${error.message}`);
      throw error;
    }
  }
  state.plan.pipOptions = pipOptionsOf(state.pipOptions);
  return state.plan;
}

/** Unprintable characters outside comments; tab is whitespace. */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/u;

function applyLine(state: ParseState, logical: LogicalLine): void {
  if (logical.unterminated) {
    invalid('the file ends inside a line continuation (the last line ends with a backslash); remove that backslash');
  }
  if (logical.commentedContinuation) {
    invalid('a line with a # comment ends with a backslash, so pip would read the next line as part of the comment; move the comment to its own line');
  }
  const control = CONTROL.exec(logical.text);
  if (control) invalid(`control character ${show(control[0])} in '${show(logical.text)}'; a lockfile is plain text`);

  if (logical.text.startsWith('-')) {
    for (const option of parseOptionsLine(logical.text)) applyOption(state, logical.line, option);
  } else {
    addRequirement(state, logical.line, parseRequirementLine(logical.text));
  }
}

function applyOption(state: ParseState, line: number, option: LineOption): void {
  if ('url' in option) applyIndexOption(state, line, option);
  else state.pipOptions.push({ ...option, line });
}

function applyIndexOption(state: ParseState, line: number, { option, url }: IndexOption): void {
  if (option === 'extra-index-url') {
    state.plan.extraIndexUrls.push(url);
    return;
  }
  if (state.indexUrlLine !== null) {
    invalid(`--index-url is given a second time (first on line ${state.indexUrlLine}); keep one`);
  }
  state.plan.indexUrl = url;
  state.indexUrlLine = line;
}

function addRequirement(state: ParseState, line: number, parsed: ParsedRequirement): void {
  const key = `${parsed.name}\u0000${parsed.markerKey ?? ''}`;
  const earlier = state.seen.get(key);
  if (earlier) {
    const markers = parsed.marker === null ? 'neither has an environment marker' : 'both have the same environment marker';
    invalid(
      `${show(parsed.head)} conflicts with ${show(earlier.head)} on line ${earlier.line}: ${markers}; keep one line per project, or tell the lines apart with markers`,
    );
  }
  state.seen.set(key, { line, head: parsed.head });

  const requirement: LockedRequirement = {
    name: parsed.name,
    rawName: parsed.rawName,
    version: parsed.version,
    extras: parsed.extras,
    marker: parsed.marker,
    sha256: parsed.sha256,
    line,
  };
  state.plan.requirements.push(requirement);
}

/**
 * Reads and parses a lockfile: a PEP 751 `pylock.toml` (by its name), else a requirements file.
 * UTF-8, or UTF-16 with a byte order mark (PowerShell's `>` writes that).
 */
export async function readLock(file: string): Promise<LockPlan> {
  const format = lockFormatOf(file);
  let bytes: Buffer;
  try {
    bytes = await readInputFile(file);
  } catch (error: unknown) {
    throw new InputError('lock.unreadable', `${file}: cannot read the lockfile (${describeReadError(error)}); check the path`, {
      cause: error,
    });
  }
  const text = decode(bytes, file);
  return format === 'pylock' ? parsePylock(text, file) : parseLock(text, file);
}

/** PEP 751's file names: `pylock.toml`, or `pylock.<name>.toml` with a name that has no dot. */
const PYLOCK_NAME = /^pylock\.(?:[^.]+\.)?toml$/;

/** Whether a file's name makes it a PEP 751 lock. */
export function isPylockName(file: string): boolean {
  return PYLOCK_NAME.test(basename(file));
}

/** Lock formats of other tools, each with the export that writes one this tool reads. */
const OTHER_LOCKS: Record<string, { tool: string; hint: string }> = {
  'uv.lock': {
    tool: "uv's",
    hint: 'export it: uv export --format requirements-txt --no-emit-project --output-file requirements.lock, or uv export --format pylock.toml --no-emit-project -o pylock.toml',
  },
  'poetry.lock': {
    tool: "Poetry's",
    hint: 'export it: poetry export --format requirements.txt --output requirements.lock (poetry-plugin-export writes the hashes)',
  },
  'Pipfile.lock': { tool: "Pipenv's", hint: 'export it: pipenv requirements --hash > requirements.lock' },
  'pdm.lock': { tool: "PDM's", hint: 'export it: pdm export --format requirements --output requirements.lock (with hashes, the default)' },
};

/** Which parser reads `file`, by its name. Another tool's own lock format is refused with the export that gives one this tool reads. */
function lockFormatOf(file: string): 'pylock' | 'requirements' {
  const name = basename(file);
  if (isPylockName(file)) return 'pylock';
  const other = Object.hasOwn(OTHER_LOCKS, name) ? OTHER_LOCKS[name] : undefined;
  if (other) {
    throw new InputError(
      'lock.invalid',
      `${file}: ${name} is ${other.tool} own lock format, which this tool does not read; give it a requirements file with hashes or a pylock.toml (PEP 751)`,
      { hint: other.hint },
    );
  }
  if (name.toLowerCase().endsWith('.toml')) {
    throw new InputError(
      'lock.invalid',
      `${file}: a TOML lockfile must be named pylock.toml or pylock.<name>.toml (PEP 751); rename it if it is one, or give a requirements file with hashes`,
    );
  }
  return 'requirements';
}

function describeReadError(error: unknown): string {
  const code = error instanceof Error && 'code' in error ? error.code : undefined;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

function decode(bytes: Buffer, file: string): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InputError('lock.invalid', `${file}:${firstBadUtf8Line(bytes)}: the lockfile is not valid UTF-8; save it as UTF-8`);
  }
}

/** A newline byte never occurs inside a UTF-8 sequence, so each line can be checked on its own. */
function firstBadUtf8Line(bytes: Buffer): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; ; line += 1) {
    const end = bytes.indexOf(0x0a, start);
    try {
      decoder.decode(bytes.subarray(start, end < 0 ? bytes.length : end));
    } catch {
      return line;
    }
    if (end < 0) return line;
    start = end + 1;
  }
}
