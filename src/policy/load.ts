import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { InputError } from '../errors.js';
import { normalizeName } from '../lock/normalize.js';
import { PolicyFile, type Policy } from './schema.js';

export const POLICIES_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));
export const PRESETS = ['default', 'strict', 'investigate'] as const;

async function readPolicyFile(file: string): Promise<PolicyFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error: unknown) {
    throw new InputError('policy.unreadable', `cannot read policy ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error: unknown) {
    throw new InputError('policy.invalid', `${file}: not JSON: ${(error as Error).message}`);
  }
  const parsed = PolicyFile.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new InputError('policy.invalid', `${file}: invalid policy\n  ${issues.join('\n  ')}`);
  }
  return parsed.data;
}

function isPreset(ref: string): boolean {
  return (PRESETS as readonly string[]).includes(ref);
}

function presetPath(name: string): string {
  return path.join(POLICIES_DIR, `${name}.json`);
}

/** Load a preset by name or a policy file by path, resolving `extends` (presets or paths). */
export async function loadPolicy(ref: string, seen: string[] = []): Promise<Policy> {
  const file = isPreset(ref) ? presetPath(ref) : path.resolve(ref);
  if (seen.includes(file)) throw new InputError('policy.invalid', `policy extends itself: ${[...seen, file].join(' -> ')}`);
  const own = await readPolicyFile(file);
  const base: Policy | null = own.extends
    ? await loadPolicy(isPreset(own.extends) ? own.extends : path.resolve(path.dirname(file), own.extends), [...seen, file])
    : null;
  const merged = {
    // A policy that extends a preset is not that preset: it is named after its own file.
    name: own.name ?? path.basename(file, '.json'),
    failOn: own.failOn ?? base?.failOn,
    warnOnly: own.warnOnly ?? base?.warnOnly ?? [],
    build: own.build ?? base?.build,
    onlyBinary: own.onlyBinary ?? base?.onlyBinary ?? false,
    allowLockIndexUrl: own.allowLockIndexUrl ?? base?.allowLockIndexUrl ?? false,
    knownGoodPth: own.knownGoodPth ?? base?.knownGoodPth ?? [],
    severities: { ...base?.severities, ...own.severities },
    packages: own.packages ?? base?.packages ?? { allow: [], deny: [] },
    process: own.process ?? base?.process,
    export: own.export ?? base?.export ?? true,
  };
  if (!merged.failOn || !merged.build || !merged.process) {
    throw new InputError('policy.invalid', `${file}: failOn, build and process must be set here or in the policy it extends`);
  }
  return {
    ...merged,
    failOn: merged.failOn,
    process: merged.process,
    build: { allow: merged.build.allow.map(normalizeName) },
    packages: { allow: merged.packages.allow.map(normalizeName), deny: merged.packages.deny.map(normalizeName) },
  };
}
