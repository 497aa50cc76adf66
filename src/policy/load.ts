import { readInputFile } from '../core/read-input.js';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { z } from 'zod';
import { InputError } from '../errors.js';
import { mergeBuildPins, type BuildPin } from '../lock/build-pins.js';
import { normalizeName } from '../lock/normalize.js';
import { KnownGoodFile, PolicyFile, type KnownGoodPth, type KnownGoodScripts, type KnownGoodStdlib, type Policy, type Suppression } from './schema.js';

export const POLICIES_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));
export const PRESETS = ['default', 'strict', 'investigate'] as const;

/** One thing wrong with a policy file: where (a JSON path) and what. */
export interface PolicyProblem {
  path: string;
  message: string;
}

/** `rules["network.dns"]`, `suppressions[0].expires`: a path a reader can follow into the file. */
function jsonPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(segment))) out += out ? `.${String(segment)}` : String(segment);
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out || '(root)';
}

/** zod's messages, said in the policy's own terms where zod's would be vague. */
const policyErrors: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'unrecognized_keys') {
    const inRules = issue.path?.length === 1 && (issue.path[0] === 'rules' || issue.path[0] === 'severities');
    const keys = issue.keys.map((k) => `'${k}'`).join(', ');
    return inRules ? `unknown rule id or family ${keys} (see the rule catalogue; a family is written family.*)` : `unknown key ${keys}`;
  }
  return undefined;
};

/** Every problem zod finds in a parsed policy, with its path. */
function schemaProblems(error: z.ZodError): PolicyProblem[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' && issue.path.length === 1 && (issue.path[0] === 'rules' || issue.path[0] === 'severities')
      ? // One line per unknown rule, at the rule's own path.
        issue.keys.map((key) => ({
          path: jsonPath([...issue.path, key]),
          message: `unknown rule id or family '${key}' (see the rule catalogue; a family is written family.*)`,
        }))
      : [{ path: jsonPath(issue.path), message: issue.message }],
  );
}

function invalidPolicy(file: string, problems: PolicyProblem[]): InputError {
  return new InputError('policy.invalid', `${file}: invalid policy\n  ${problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`);
}

async function readPolicyFile(file: string): Promise<PolicyFile> {
  let text: string;
  try {
    text = (await readInputFile(file)).toString('utf8');
  } catch (error: unknown) {
    throw new InputError('policy.unreadable', `cannot read policy ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error: unknown) {
    throw new InputError('policy.invalid', `${file}: not JSON: ${(error as Error).message}`);
  }
  const parsed = PolicyFile.safeParse(json, { error: policyErrors });
  if (!parsed.success) throw invalidPolicy(file, schemaProblems(parsed.error));
  return parsed.data;
}

/** A file of reviewed allowances named by a policy's `knownGood`, relative to that policy. */
async function readKnownGood(
  policyFile: string,
  ref: string,
  index: number,
): Promise<{ pth: KnownGoodPth[]; scripts: KnownGoodScripts[]; stdlib: KnownGoodStdlib[] }> {
  const file = path.resolve(path.dirname(policyFile), ref);
  const where = `knownGood[${index}]`;
  let json: unknown;
  try {
    json = JSON.parse((await readInputFile(file)).toString('utf8'));
  } catch (error: unknown) {
    throw invalidPolicy(policyFile, [{ path: where, message: `cannot read ${file} as JSON: ${(error as Error).message}` }]);
  }
  const parsed = KnownGoodFile.safeParse(json, { error: policyErrors });
  if (!parsed.success) {
    throw invalidPolicy(
      policyFile,
      schemaProblems(parsed.error).map((p) => ({ path: `${where} (${path.basename(file)}) ${p.path}`, message: p.message })),
    );
  }
  return parsed.data;
}

const pthKey = (p: KnownGoodPth) => `${p.name}\0${p.sha256}\0${p.distribution ?? ''}\0${JSON.stringify(p.imports ?? [])}`;
const stdlibKey = (s: KnownGoodStdlib) => `${normalizeName(s.distribution)}\0${s.path}\0${s.sha256}`;
const scriptsKey = (s: KnownGoodScripts) => `${normalizeName(s.distribution)}\0${s.scripts.join('\0')}`;

function isPreset(ref: string): boolean {
  return (PRESETS as readonly string[]).includes(ref);
}

function presetPath(name: string): string {
  return path.join(POLICIES_DIR, `${name}.json`);
}

/** The base's rules a child pattern covers give way to it: a child's `fs.*` decides every fs rule. */
function mergeRules<T>(base: Record<string, T>, partial: Partial<Record<string, T>> | undefined): Record<string, T> {
  if (!partial) return { ...base };
  const own = Object.fromEntries(Object.entries(partial).filter((entry): entry is [string, T] => entry[1] !== undefined));
  const covered = (pattern: string) =>
    Object.keys(own).some((mine) => mine === pattern || (mine.endsWith('.*') && pattern.startsWith(mine.slice(0, -1)) && !pattern.endsWith('.*')));
  return { ...Object.fromEntries(Object.entries(base).filter(([pattern]) => !covered(pattern))), ...own };
}

function unionBy<T>(items: T[], key: (item: T) => string): T[] {
  return [...new Map(items.map((item) => [key(item), item])).values()];
}

/** `build.allow` as names (the unpinned opt-in) and pins; a name pinned anywhere is not also unpinned. */
function splitBuildAllow(allow: Array<string | BuildPin>): Policy['build'] {
  const pins = mergeBuildPins(allow.filter((entry): entry is BuildPin => typeof entry !== 'string'));
  const pinned = new Set(pins.map((pin) => pin.name));
  const names = allow.filter((entry): entry is string => typeof entry === 'string').map(normalizeName);
  return { allow: [...new Set(names)].filter((name) => !pinned.has(name)), pins };
}

/** Today in UTC as YYYY-MM-DD: suppressions expire at the end of their day. */
export function todayUtc(now: Date = new Date()): string {
  return now.toISOString().slice(0, 10);
}

export interface LoadOptions {
  /** YYYY-MM-DD; default today (UTC). */
  today?: string;
}

/** Load a preset by name or a policy file by path, resolving `extends` (presets or paths). */
export async function loadPolicy(ref: string, options: LoadOptions = {}, seen: string[] = []): Promise<Policy> {
  const file = isPreset(ref) ? presetPath(ref) : path.resolve(ref);
  if (seen.includes(file)) throw new InputError('policy.invalid', `policy extends itself: ${[...seen, file].join(' -> ')}`);
  const own = await readPolicyFile(file);
  const base: Policy | null = own.extends
    ? await loadPolicy(isPreset(own.extends) ? own.extends : path.resolve(path.dirname(file), own.extends), options, [...seen, file]).catch(
        (error: unknown) => {
          if (error instanceof InputError && error.code === 'policy.unreadable') {
            throw invalidPolicy(file, [
              { path: 'extends', message: `'${own.extends}' is neither a preset (${PRESETS.join(', ')}) nor a readable policy file` },
            ]);
          }
          throw error;
        },
      )
    : null;
  const today = options.today ?? todayUtc();
  const suppressions: Suppression[] = [...(base?.suppressions ?? []), ...(base?.expiredSuppressions ?? []), ...(own.suppressions ?? [])].map((s) => ({
    ...s,
    package: s.package === null ? null : normalizeName(s.package),
  }));
  const expired = (s: Suppression) => s.expires !== undefined && s.expires < today;
  const build = own.build ?? base?.build;
  const process = own.process ?? base?.process;
  if (!build || !process || (!own.rules && !base)) {
    throw new InputError('policy.invalid', `${file}: rules, build and process must be set here or in the policy it extends`);
  }
  const packages = own.packages ?? base?.packages ?? { allow: [], deny: [] };
  const files = await Promise.all((own.knownGood ?? []).map((ref, i) => readKnownGood(file, ref, i)));
  return {
    // A policy that extends a preset is not that preset: it is named after its own file.
    name: own.name ?? path.basename(file, '.json'),
    rules: mergeRules(base?.rules ?? {}, own.rules),
    build: splitBuildAllow(build.allow),
    onlyBinary: own.onlyBinary ?? base?.onlyBinary ?? false,
    allowLockIndexUrl: own.allowLockIndexUrl ?? base?.allowLockIndexUrl ?? false,
    knownGoodPth: unionBy([...(base?.knownGoodPth ?? []), ...files.flatMap((f) => f.pth), ...(own.knownGoodPth ?? [])], pthKey),
    knownGoodStdlib: unionBy([...(base?.knownGoodStdlib ?? []), ...files.flatMap((f) => f.stdlib), ...(own.knownGoodStdlib ?? [])], stdlibKey),
    knownGoodScripts: unionBy([...(base?.knownGoodScripts ?? []), ...files.flatMap((f) => f.scripts), ...(own.knownGoodScripts ?? [])], scriptsKey),
    severities: mergeRules(base?.severities ?? {}, own.severities),
    packages: { allow: packages.allow.map(normalizeName), deny: packages.deny.map(normalizeName) },
    process,
    writes: { allow: [...new Set([...(base?.writes.allow ?? []), ...(own.writes?.allow ?? [])])] },
    limits: { ...base?.limits, ...own.limits },
    suppressions: suppressions.filter((s) => !expired(s)),
    expiredSuppressions: suppressions.filter(expired),
    export: own.export ?? base?.export ?? true,
  };
}

/**
 * `policy check`: every problem of a policy file, as `path: message`. Beyond what loading refuses,
 * a suppression past its expiry is a problem here (a run only warns of it).
 */
export async function checkPolicy(ref: string, options: LoadOptions = {}): Promise<{ policy: Policy | null; problems: PolicyProblem[] }> {
  let policy: Policy;
  try {
    policy = await loadPolicy(ref, options);
  } catch (error: unknown) {
    if (!(error instanceof InputError)) throw error;
    const [head, ...lines] = error.message.split('\n  ');
    const problems = lines.length > 0 ? lines.map(splitProblem) : [{ path: '(root)', message: head! }];
    return { policy: null, problems };
  }
  const own = isPreset(ref) ? null : await readPolicyFile(path.resolve(ref));
  const today = options.today ?? todayUtc();
  const expired = (s: { expires?: string | undefined }) => s.expires !== undefined && s.expires < today;
  const problems = (own?.suppressions ?? []).flatMap((s, i) =>
    expired(s) ? [{ path: jsonPath(['suppressions', i, 'expires']), message: `expired on ${s.expires}; this suppression of ${s.rule} no longer applies` }] : [],
  );
  // The ones it inherits: loading resolved them already, whatever file they came from.
  const ownCount = (own?.suppressions ?? []).filter(expired).length;
  for (const s of policy.expiredSuppressions.slice(0, policy.expiredSuppressions.length - ownCount)) {
    problems.push({
      path: 'extends',
      message: `an inherited suppression of ${s.rule} for ${s.package ?? 'unattributed findings'} expired on ${s.expires}; it no longer applies`,
    });
  }
  return { policy, problems };
}

function splitProblem(line: string): PolicyProblem {
  const at = line.indexOf(': ');
  return at < 0 ? { path: '(root)', message: line } : { path: line.slice(0, at), message: line.slice(at + 2) };
}
