/** `sandbox-install gc`: remove containers left by a killed run, found by label. */
import { hostname } from 'node:os';
import { EXIT } from '../../errors.js';
import { LABEL, type LeftoverContainer } from '../../runtime/port.js';
import type { CommandContext } from '../context.js';

function ownerAlive(container: LeftoverContainer): boolean {
  const [host, pid] = (container.labels[LABEL.owner] ?? '').split(':');
  if (host !== hostname() || !pid) return false;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes our containers whose owning process is gone (all of them with `all`). */
export async function runGc(options: { all?: boolean }, ctx: CommandContext): Promise<number> {
  const client = ctx.engine();
  await client.ping();
  const ours = await client.listOurs();
  const doomed = options.all ? ours : ours.filter((c) => !ownerAlive(c));
  for (const container of doomed) {
    await client.removeContainer(container.id);
    ctx.logger.info({ container: container.name }, 'removed');
  }
  process.stdout.write(`removed ${doomed.length} container(s); ${ours.length - doomed.length} belong to runs still going\n`);
  return EXIT.pass;
}
