/**
 * The filesystem changes a phase's trace shows, as the engine's diff would list them: the stand-in
 * when that diff could not be read (Docker's fails on a path the sandbox made too long for the
 * engine's own walk, with the overlay prefix added). It comes from the record the run already
 * holds, so no path the sandbox makes can break it. The run fails anyway (monitor.tampered names
 * the diff); this keeps what it wrote outside the target judged and attributed.
 */
import type { FsChange } from '../core/outcome.js';
import type { Trace } from './trace.js';

/** Not the container's own filesystem: kernel and device trees the diff never lists. */
const NOT_ROOTFS = /^\/(?:dev|proc|sys)(?:\/|$)/;

/**
 * Every path a successful call created, changed or removed, with what the diff would say of it:
 * `added` (created, O_CREAT included: an existing file opened with it shows as added), `modified`
 * (written, or its mode, owner, times or length changed), `deleted`. A path made and removed in the
 * run is left out, as the diff leaves it out; a path the tracer could not make absolute is too.
 */
export function changesFromTrace(trace: Trace): FsChange[] {
  const changes = new Map<string, FsChange>();
  const made = (path: string): void => {
    if (path.startsWith('/') && !NOT_ROOTFS.test(path)) changes.set(path, { path, kind: 'added' });
  };
  const changed = (path: string): void => {
    if (path.startsWith('/') && !NOT_ROOTFS.test(path) && !changes.has(path)) changes.set(path, { path, kind: 'modified' });
  };
  const removed = (path: string): void => {
    if (!path.startsWith('/') || NOT_ROOTFS.test(path)) return;
    if (changes.get(path)?.kind === 'added') changes.delete(path);
    else changes.set(path, { path, kind: 'deleted' });
  };
  for (const event of trace.events) {
    if (!('ok' in event) || !event.ok) continue;
    switch (event.kind) {
      case 'open':
        if (event.create) made(event.path);
        else if (event.write) changed(event.path);
        break;
      case 'unlink':
        removed(event.path);
        break;
      case 'rename':
        removed(event.from);
        made(event.to);
        break;
      case 'symlink':
        made(event.path);
        break;
      case 'fsop':
        if (event.syscall === 'rmdir') removed(event.path);
        else if (event.syscall === 'mkdir' || event.syscall === 'mkdirat' || event.syscall === 'link' || event.syscall === 'linkat') made(event.path);
        else changed(event.path);
        break;
      default:
        break;
    }
  }
  return [...changes.values()];
}
