import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { machineName } from './machine-name.js';

/** RFC 1123: labels of letters, digits and inner hyphens, at most 63 characters. */
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

describe('machineName', () => {
  it('is a valid host name, never the engine’s 12 hex digits, and differs from run to run', () => {
    const names = Array.from({ length: 300 }, () => machineName());
    for (const name of names) {
      expect(name).toMatch(HOST_NAME);
      expect(name).not.toMatch(/^[0-9a-f]{12}$/);
    }
    expect(new Set(names).size).toBeGreaterThan(100);
  });

  it("rarely names two sessions alike (lock's two resolves must differ in the machine they show)", () => {
    let same = 0;
    for (let i = 0; i < 5000; i++) if (machineName() === machineName()) same += 1;
    // About 1 in 2,000 pairs; 12 in 5,000 is far out in the tail.
    expect(same).toBeLessThan(12);
  });

  it('draws every kind of machine: installer-named laptops, workstations, GitHub and GitLab runners', () => {
    let seed = 0;
    const seeded = (n: number) => createHash('sha512').update(String(seed++)).digest().subarray(0, n);
    const names = Array.from({ length: 200 }, () => machineName(seeded));
    for (const kind of [
      /^[a-z]+-(ThinkPad|XPS|Latitude|Precision|HP|Inspiron|ROG|Framework|OptiPlex)-[A-Za-z0-9-]+$/,
      /^(desktop|workstation|dev|devbox|laptop|build|tower)-\d{2}$/,
      /^fv-az\d{3}-\d{3}$/,
      /^runner-[a-z0-9]{8}-project-\d{5}-concurrent-[0-3]$/,
    ]) {
      expect(
        names.some((name) => kind.test(name)),
        String(kind),
      ).toBe(true);
    }
  });
});
