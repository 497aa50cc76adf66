/**
 * Turn what a run recorded into an Observation: the network, filesystem and process events for the
 * report, and the findings they raise.
 */
import type { LockPlan } from '../lock/types.js';
import type { Policy } from '../policy/schema.js';
import type { Finding } from '../report/finding.js';
import type { InstallOutcome } from '../sandbox/session.js';
import type { Readable } from 'node:stream';

export interface Observation {
  findings: Finding[];
  network: Array<Record<string, unknown>>;
  filesystem: Array<Record<string, unknown>>;
  processes: Array<Record<string, unknown>>;
}

export interface ObserveInput {
  outcome: InstallOutcome;
  plan: LockPlan;
  policy: Policy;
  /** The target site-packages as a tar stream, when pip succeeded. */
  archive: Readable | null;
}

export async function observe(input: ObserveInput): Promise<Observation> {
  input.archive?.resume();
  return {
    findings: [],
    network: input.outcome.monitorEvents,
    filesystem: input.outcome.changes.map((change) => ({ ...change })),
    processes: [],
  };
}
