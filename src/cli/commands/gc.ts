/**
 * `sandbox-install gc`: remove what killed runs left. Their temp and staging dirs, from the records
 * runs keep while they go (core/run-record.ts); then their containers, found by label. A run whose
 * owner still lives keeps its dirs, and its containers unless `--all`. It prints what it removed.
 */
import { EXIT } from '../../errors.js';
import { defaultRunsDir, ownerDead, ownerState, sweepRuns } from '../../core/run-record.js';
import { escapeControl } from '../../report/escape.js';
import { LABEL, type LeftoverContainer } from '../../runtime/port.js';
import type { CommandContext } from '../context.js';

/** A container's owner lives on this host (one on another host, or unlabelled, counts as gone: the engine is this host's). */
function ownerAlive(container: LeftoverContainer): boolean {
  const [host, pid] = (container.labels[LABEL.owner] ?? '').split(':');
  if (!host || !pid || !/^\d+$/.test(pid)) return false;
  return ownerState(host, Number(pid)) === 'alive';
}

const say = (line: string): void => void process.stdout.write(`${escapeControl(line)}\n`);

/** Removes the dirs of runs whose owner is dead, then our containers whose owner is gone (all of them with `all`). */
export async function runGc(options: { all?: boolean }, ctx: CommandContext, runsDir: string = defaultRunsDir()): Promise<number> {
  // The dirs first: they need no engine.
  const sweep = await sweepRuns(runsDir, ownerDead);
  for (const dir of sweep.dirs) say(dir.removed ? `removed directory ${dir.path}` : `left ${dir.path}: ${dir.why}`);
  for (const file of sweep.unreadable) say(`left ${file.file}: ${file.why}`);
  const removedDirs = sweep.dirs.filter((dir) => dir.removed).length;
  say(`removed ${removedDirs} directory(ies) of ${sweep.records} dead run(s); ${sweep.live} run(s) still going keep theirs`);

  const client = ctx.engine();
  await client.ping();
  const ours = await client.listOurs();
  const doomed = options.all ? ours : ours.filter((c) => !ownerAlive(c));
  for (const container of doomed) {
    await client.removeContainer(container.id);
    say(`removed container ${container.name}`);
  }
  say(`removed ${doomed.length} container(s); ${ours.length - doomed.length} belong to runs still going`);
  return EXIT.pass;
}
