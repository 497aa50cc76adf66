/**
 * The seccomp profile both containers of a run get: images/seccomp/sandbox.json, made by
 * `tightenProfile` from the engine's default (images/seccomp/engine-default.json, Docker 20.10's
 * default profile as Debian ships it; images/seccomp/README.md says where it comes from). A unit
 * test rebuilds it and fails when the checked-in copy differs (`npm run schemas` writes it).
 *
 * The profile is the engine's own format (Docker's and Podman's are the same): Docker's API takes
 * its JSON text in SecurityOpt, Podman's Docker-compatible API a path to the file, so the file is
 * shipped as it is applied, and the adapter (runtime/docker.ts) hands it over in the form its
 * engine reads.
 */
import { fileURLToPath } from 'node:url';
import { FORBIDDEN_SYSCALLS, PERSONALITY_QUERY, PROFILE_ARCHITECTURES, TRACER_SYSCALLS } from '../core/seccomp.js';

/** Where the applied profile lives: beside images/, found from src/runtime and dist/ alike. */
export const SANDBOX_PROFILE = fileURLToPath(new URL('../../images/seccomp/sandbox.json', import.meta.url));
export const ENGINE_DEFAULT_PROFILE = fileURLToPath(new URL('../../images/seccomp/engine-default.json', import.meta.url));

interface SyscallArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

interface SyscallRule {
  names: string[];
  action: string;
  args?: SyscallArg[] | null;
  [field: string]: unknown;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: unknown;
  syscalls: SyscallRule[];
}

/** Refused by the profile whatever the arguments: every forbidden call but those the tracer needs, and personality (its query stays). */
const REFUSED = new Set<string>(FORBIDDEN_SYSCALLS.filter((name) => !TRACER_SYSCALLS.includes(name) && name !== 'personality'));

/**
 * The engine's default, tightened:
 * - only the native 64-bit architectures (PROFILE_ARCHITECTURES instead of the default's archMap,
 *   which adds i386 and x32 on x86_64 and arm on arm64);
 * - every forbidden call taken out of every rule, whatever capability or architecture the rule is
 *   conditioned on, except ptrace and process_vm_readv/writev, which the tracer needs (the tracer's
 *   filter refuses them to the traced processes; core/seccomp.ts);
 * - personality() only as the query (0xffffffff), no persona change;
 * - a refusal returns EPERM, said explicitly (`defaultErrnoRet`).
 * Rules are otherwise kept as written, in order, so the diff from the default is only that. The
 * default's top level holds nothing else (defaultAction, archMap, syscalls).
 */
export function tightenProfile(engineDefault: SeccompProfile): SeccompProfile {
  const syscalls: SyscallRule[] = [];
  for (const rule of engineDefault.syscalls) {
    const names = rule.names.filter((name) => !REFUSED.has(name));
    if (names.includes('personality') && !isPersonalityQuery(rule)) names.splice(names.indexOf('personality'), 1);
    if (names.length === 0) continue;
    syscalls.push({ ...rule, names });
  }
  return { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, architectures: [...PROFILE_ARCHITECTURES], syscalls };
}

/** A rule that allows personality() only with the query as its argument. */
function isPersonalityQuery(rule: SyscallRule): boolean {
  const args = rule.args ?? [];
  return rule.names.length === 1 && args.length === 1 && args[0]?.index === 0 && args[0].op === 'SCMP_CMP_EQ' && args[0].value === PERSONALITY_QUERY;
}

/** The profile as the file holds it. */
export function renderProfile(profile: SeccompProfile): string {
  return `${JSON.stringify(profile, null, 2)}\n`;
}
