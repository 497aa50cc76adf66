/**
 * The sandbox's host name: a different, plausible machine each run. The engine's default (the
 * first 12 hex digits of the container id) tells a payload it runs in a throwaway container, so it
 * can stay quiet there and fire on a developer's laptop. These look like the machines packages are
 * installed on: an Ubuntu desktop named by its installer (`jordan-ThinkPad-T14-Gen-3`), a
 * workstation by its admin, a hosted CI runner (GitHub's Azure VMs, GitLab's Docker runners).
 */
import { randomBytes } from 'node:crypto';
import { SANDBOX_USER } from './layout.js';

const LAPTOPS = [
  'ThinkPad-T14-Gen-3',
  'ThinkPad-X1-Carbon-Gen-9',
  'ThinkPad-P52',
  'XPS-13-9310',
  'XPS-15-9520',
  'Latitude-5420',
  'Precision-5560',
  'HP-EliteBook-840-G8',
  'Inspiron-15-3511',
  'ROG-Zephyrus-G14',
  'Framework-Laptop',
  'OptiPlex-7090',
];
/** Who installed the machine: Ubuntu's installer names it `<login>-<product name>`. */
const OWNERS = [
  'alex',
  'jordan',
  'sam',
  'taylor',
  'casey',
  'jamie',
  'riley',
  'chris',
  'dana',
  'morgan',
  'robin',
  'kim',
  'lee',
  'max',
  'nina',
  'omar',
  'priya',
  'tom',
  'eva',
  'li',
  'marco',
  'anna',
  'ben',
  SANDBOX_USER,
];
const DESKS = ['desktop', 'workstation', 'dev', 'devbox', 'laptop', 'build', 'tower'];
const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A host name (RFC 1123 labels, at most 63 characters), drawn from `random` (injectable for tests). */
export function machineName(random: (n: number) => Buffer = randomBytes): string {
  const bytes = random(16);
  const pick = <T>(list: readonly T[], at: number): T => list[bytes[at]! % list.length]!;
  const digits = (count: number, at: number) => String(bytes.readUInt32BE(at) % 10 ** count).padStart(count, '0');
  switch (bytes[0]! % 5) {
    case 0:
    case 1:
      // Ubuntu's installer: `<login>-<product name>`. 24 × 12 names: two sessions (lock's two
      // resolves) draw the same one about once in 2,000 pairs.
      return `${pick(OWNERS, 13)}-${pick(LAPTOPS, 1)}`;
    case 2:
      return `${pick(DESKS, 1)}-${digits(2, 2)}`;
    case 3:
      // GitHub's hosted runners: `fv-az<3 digits>-<3 digits>`.
      return `fv-az${digits(3, 2)}-${digits(3, 6)}`;
    default:
      // GitLab's Docker executor: `runner-<8 characters>-project-<id>-concurrent-<n>`.
      return `runner-${[...bytes.subarray(2, 10)].map((b) => LOWER_ALNUM[b % LOWER_ALNUM.length]).join('')}-project-${digits(5, 12)}-concurrent-${bytes[11]! % 4}`;
  }
}
