/** The sandbox's seccomp profile: made from the engine's default, refusing what core/seccomp.ts says, and the tracer's filter agreeing. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FORBIDDEN_SYSCALLS, PERSONALITY_QUERY, TRACER_SYSCALLS } from '../core/seccomp.js';
import { ENGINE_DEFAULT_PROFILE, renderProfile, SANDBOX_PROFILE, tightenProfile, type SeccompProfile } from './seccomp.js';

const read = (file: string) => readFileSync(file, 'utf8');
const engineDefault = JSON.parse(read(ENGINE_DEFAULT_PROFILE)) as SeccompProfile;
const sandbox = JSON.parse(read(SANDBOX_PROFILE)) as SeccompProfile;

/** The rules that allow `name` on this profile's architectures, whatever they are conditioned on. */
const allowing = (profile: SeccompProfile, name: string) => profile.syscalls.filter((rule) => rule.action === 'SCMP_ACT_ALLOW' && rule.names.includes(name));

describe('images/seccomp/sandbox.json', () => {
  it('is what tightenProfile makes of the engine default (run `npm run schemas` after changing either)', () => {
    expect(read(SANDBOX_PROFILE)).toBe(renderProfile(tightenProfile(engineDefault)));
  });

  it("starts from the engine's default recorded in images/seccomp/README.md, unchanged", () => {
    const readme = read(new URL('../../images/seccomp/README.md', import.meta.url).pathname);
    const sha256 = createHash('sha256').update(readFileSync(ENGINE_DEFAULT_PROFILE)).digest('hex');
    expect(readme).toContain(`sha256 of the file: \`${sha256}\``);
    // What it is tightened against: the default allows all of these, or i386 and x32.
    expect(allowing(engineDefault, 'io_uring_setup')).not.toEqual([]);
    expect(JSON.stringify(engineDefault.archMap)).toContain('SCMP_ARCH_X86');
  });

  it('allows only the native 64-bit architectures, and refuses with EPERM by default', () => {
    expect(sandbox.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64']);
    expect(sandbox.archMap).toBeUndefined();
    expect(sandbox).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1 });
  });

  it('allows no forbidden call, under any condition, but those the tracer needs and the persona query', () => {
    for (const name of FORBIDDEN_SYSCALLS) {
      const rules = allowing(sandbox, name);
      if (TRACER_SYSCALLS.includes(name)) {
        // strace traces with ptrace and reads its tracees' memory with process_vm_readv.
        expect(rules, name).not.toEqual([]);
      } else if (name === 'personality') {
        expect(rules.map((rule) => [rule.names, rule.args])).toEqual([[['personality'], [{ index: 0, value: PERSONALITY_QUERY, op: 'SCMP_CMP_EQ' }]]]);
      } else {
        expect(rules, name).toEqual([]);
      }
    }
  });

  it('keeps every other rule of the default as it was', () => {
    const touched = new Set<string>(FORBIDDEN_SYSCALLS.filter((name) => !TRACER_SYSCALLS.includes(name)));
    const kept = (profile: SeccompProfile) =>
      profile.syscalls.map((rule) => ({ ...rule, names: rule.names.filter((name) => !touched.has(name)) })).filter((rule) => rule.names.length > 0);
    expect(kept(sandbox)).toEqual(kept(engineDefault));
  });
});

describe("the tracer's filter (images/tracee-filter.py)", () => {
  it('refuses exactly the forbidden calls the profile leaves to the tracer', () => {
    const script = read(new URL('../../images/tracee-filter.py', import.meta.url).pathname);
    const refused = /^REFUSED = \[([^\]]*)\]/m.exec(script)?.[1] ?? '';
    expect(refused.split(',').map((name) => name.trim().replace(/^"|"$/g, ''))).toEqual([...TRACER_SYSCALLS]);
  });
});
