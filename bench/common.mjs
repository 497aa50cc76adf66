/**
 * What the bench scripts share: where the repository and the CLI are, a log line on stderr, and
 * commands run with pip's configuration switched off (the bench names its index itself).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = path.join(ROOT, 'bin', 'sandbox-install.js');

/** A logger that prefixes each line with the script's name. */
export const logger = (name) => (line) => process.stderr.write(`${name}: ${line}\n`);

/**
 * One command, timed from spawn to exit, with PIP_CONFIG_FILE=/dev/null and NO_COLOR set. Resolves
 * whatever the exit code: `{ code, seconds, stdout, stderr }` (code null when a signal ended it).
 */
export function run(file, args, { env = {}, cwd, input } = {}) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { cwd, env: { ...process.env, PIP_CONFIG_FILE: '/dev/null', NO_COLOR: '1', ...env }, maxBuffer: 256 * 1024 ** 2 },
      (error, stdout, stderr) => {
        const seconds = (performance.now() - started) / 1000;
        if (error && typeof error.code !== 'number' && error.signal === null)
          reject(error); // not started (ENOENT, ...)
        else resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, seconds, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin.end(input);
  });
}

/** One command, timed from spawn to exit; a failure rejects with its output's tail. */
export async function timed(file, args, env = {}) {
  const { code, seconds, stdout, stderr } = await run(file, args, { env });
  if (code !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} failed (${code}):\n${`${stdout}\n${stderr}`.slice(-3000)}`);
  return seconds;
}
