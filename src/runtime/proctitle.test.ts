/**
 * images/proctitle.py, which our scripts use so that a package's code reading /proc/1 or its
 * parent's /proc entries does not see the tool's name; and the supervisor's choice of what runs
 * under its launcher. Run with this machine's python3 (stdlib only, like the image's).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const IMAGES = path.resolve(import.meta.dirname, '../../images');
const PROCTITLE = path.join(IMAGES, 'proctitle.py');
const dir = mkdtempSync(path.join(tmpdir(), 'sandbox-install-proctitle-'));

/** A script that prints what other processes see of it: its cmdline (raw), its comm, and its own argv. */
const SHOW = path.join(dir, 'show.py');
writeFileSync(
  SHOW,
  `import json, sys
cmdline = open("/proc/self/cmdline", "rb").read()
print(json.dumps({"cmdline": cmdline.hex(), "comm": open("/proc/self/comm").read().strip(), "argv": sys.argv, "name": __name__}))
sys.exit(3)
`,
);

function launch(...args: string[]): { cmdline: string; comm: string; argv: string[]; name: string; status: number } {
  try {
    execFileSync('python3', ['-I', '-S', PROCTITLE, ...args], { encoding: 'utf8' });
    throw new Error('exited 0');
  } catch (error: unknown) {
    const { stdout, status } = error as { stdout: string; status: number };
    const shown = JSON.parse(stdout) as { cmdline: string; comm: string; argv: string[]; name: string };
    return { ...shown, cmdline: Buffer.from(shown.cmdline, 'hex').toString('latin1'), status };
  }
}

describe('proctitle.py', () => {
  it('shows the title alone as the cmdline (no trailing NULs or blanks) and the name as comm; the script runs as __main__ with its own argv and exit code', () => {
    const shown = launch('-bash', 'bash', SHOW, '/opt/target/lib/python3.11/site-packages', '10');
    expect(shown.cmdline).toBe('-bash\0');
    expect(shown.comm).toBe('bash');
    expect(shown.argv).toEqual([SHOW, '/opt/target/lib/python3.11/site-packages', '10']);
    expect(shown.name).toBe('__main__');
    expect(shown.status).toBe(3);
  });

  it('shows a long title whole (up to the page the kernel reads it from), and cuts comm to 15 bytes', () => {
    const shown = launch('x'.repeat(3000), 'a-very-long-process-name', SHOW);
    expect(shown.comm).toBe('a-very-long-pro');
    expect(shown.cmdline).toBe(`${'x'.repeat(3000)}\0`);
  });

  it('leaves what a tracer recorded at the exec alone: strace still sees the true argv', () => {
    let strace = true;
    try {
      execFileSync('strace', ['-V'], { stdio: 'ignore' });
    } catch {
      strace = false;
    }
    if (!strace) return;
    const log = path.join(dir, 'trace.log');
    try {
      execFileSync('strace', ['-f', '-s', '4096', '-e', 'trace=execve,prctl', '-o', log, 'python3', '-I', '-S', PROCTITLE, '-bash', 'bash', SHOW, 'arg'], {
        stdio: 'ignore',
      });
    } catch {
      // show.py exits 3
    }
    const trace = readFileSync(log, 'utf8');
    // The interpreter's exec (after any wrapper a python3 on PATH may be), with the argv it was given.
    expect(trace).toMatch(new RegExp(`execve\\("[^"]+", \\["[^"]*python3", "-I", "-S", "${PROCTITLE}", "-bash", "bash", "${SHOW}", "arg"\\]`));
    expect(trace).toMatch(/prctl\(PR_SET_NAME, "bash"\)/);
  });
});

describe("the supervisor's launcher choice", () => {
  const disguised = (command: string[]): string[] =>
    JSON.parse(
      execFileSync(
        'python3',
        [
          '-I',
          '-S',
          '-c',
          `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("supervisor", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(module.disguised(json.loads(sys.argv[2]))))`,
          path.join(IMAGES, 'supervisor.py'),
          JSON.stringify(command),
        ],
        { encoding: 'utf8' },
      ),
    ) as string[];

  it('runs the importer under proctitle.py, in the same process, and every other command as it is', () => {
    const importer = path.join(IMAGES, 'importer.py');
    expect(disguised(['python3', '-I', '-S', importer, '/opt/target/lib/python3.11/site-packages', '10'])).toEqual([
      'python3',
      '-I',
      '-S',
      PROCTITLE,
      '-bash',
      'bash',
      importer,
      '/opt/target/lib/python3.11/site-packages',
      '10',
    ]);
    for (const command of [
      ['python3', '-m', 'pip', 'install'],
      ['python3', '-I', '-S', path.join(IMAGES, 'startup.py'), '/s', '5'],
      ['python3', '-I', importer],
    ]) {
      expect(disguised(command)).toEqual(command);
    }
  });
});
