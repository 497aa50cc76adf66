/** Wiring only: commander options in, one command per file, exit code out. Only `main()` maps errors. */
import { Command, CommanderError, Option } from 'commander';
import { exitCodeFor, exitCodeForSignal, EXIT, InterruptedError, SandboxError, type StopSignal } from '../errors.js';
import { escapeControl } from '../report/escape.js';
import { DockerClient } from '../runtime/docker.js';
import { LABEL, runOwner, type ContainerClient } from '../runtime/port.js';
import type { CommandContext } from './context.js';
import { createLogger, type Verbosity } from './logger.js';
import { runGc } from './commands/gc.js';
import { runImageBuild } from './commands/image.js';
import { runInstall } from './commands/install.js';
import { runWheelhouse } from './commands/wheelhouse.js';
import { runLock } from './commands/lock.js';
import { DEFAULT_IMPORT_TIMEOUT_SECONDS, DEFAULT_LINGER_SECONDS, DEFAULT_MAX_MODULES, runInvestigate } from './commands/investigate.js';
import { DEFAULT_TIMEOUT_SECONDS } from '../workflows/steps.js';
import { runPolicyCheck } from './commands/policy.js';
import { runDoctor } from './commands/doctor.js';
import { TOOL_VERSION } from '../core/version.js';
import { defaultRunsDir, sweepRuns } from '../core/run-record.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** --python-version, on the commands that install or resolve for the user's interpreter. */
function pythonVersionOption(command: Command): Command {
  return command.option(
    '--python-version <X.Y.Z>',
    "the Python the result is for: markers and Requires-Python are evaluated for it (default: the host's python3.11, else the image's); another X.Y than the image's 3.11 is refused",
  );
}

/** The flags of every command that runs a sandbox. */
function sandboxOptions(command: Command, policy: string): Command {
  return command
    .option('--index-url <url>', "upstream index (default: pip's configuration)")
    .option('--extra-index-url <url>', 'extra upstream index (repeatable)', collect, [])
    .option('--policy <preset|file>', 'default | strict | investigate | path to a policy JSON', policy)
    .option('--report <file>', 'write the JSON report here, whatever the verdict')
    .addOption(new Option('--format <format>', 'stdout format').choices(['text', 'json', 'sarif']).default('text'))
    .option('--timeout <seconds>', `wall-clock limit for the whole run (default: the policy's limits.timeoutSeconds, else ${DEFAULT_TIMEOUT_SECONDS})`)
    .option('--image <ref>', 'sandbox image (default: built from images/ on first use)')
    .option('--cache-dir <dir>', 'content-addressed download cache (default: ~/.cache/sandbox-install)');
}

/**
 * The second Ctrl-C: remove every container this process started (by its owner label) and the
 * directories its runs recorded, then exit with the signal's code without waiting for the rest of
 * the cleanup.
 */
async function forceExit(client: ContainerClient | null, signal: StopSignal, exit: (code: number) => void): Promise<void> {
  process.stderr.write(`sandbox-install: ${signal} again: removing this run's containers and exiting\n`);
  if (client) {
    const mine = await client.listOurs().catch(() => []);
    await Promise.allSettled(mine.filter((c) => c.labels[LABEL.owner] === runOwner()).map((c) => client.removeContainer(c.id)));
  }
  await sweepRuns(defaultRunsDir(), (record) => `${record.host}:${record.pid}` === runOwner()).catch(() => undefined);
  exit(exitCodeForSignal(signal));
}

/** `engine` makes the container client the commands use; tests pass a fake, and may catch the forced exit. */
export async function main(
  argv: string[],
  makeEngine: () => ContainerClient = () => new DockerClient(),
  exit: (code: number) => void = (code) => process.exit(code),
): Promise<number> {
  let client: ContainerClient | null = null;
  const engine = () => (client ??= makeEngine());
  const controller = new AbortController();
  let exitCode: number = EXIT.pass;
  let forcing = false;
  const onSignal = (signal: StopSignal) => {
    if (signal === 'SIGHUP') {
      // The terminal is gone (a closed window, a dropped SSH session): writing to it fails with EIO
      // or EPIPE, which must not end the process before the cleanup has removed the containers.
      process.stdout.on('error', () => undefined);
      process.stderr.on('error', () => undefined);
    }
    if (!controller.signal.aborted) {
      controller.abort(new InterruptedError(signal));
      return;
    }
    // A second signal while the cleanup runs: remove this process's containers at once and go.
    if (forcing) return;
    forcing = true;
    void forceExit(client, signal, exit);
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  const onHup = () => onSignal('SIGHUP');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);

  const program = new Command('sandbox-install')
    .description('Install a Python lockfile in a throwaway, network-less container; export site-packages only if the policy passes.')
    .version(TOOL_VERSION)
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .option('-v, --verbose', 'debug logs on stderr')
    .option('--no-color', 'no colour (NO_COLOR is honoured too)')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  const context = (): CommandContext => {
    const globals = program.opts<{ quiet?: boolean; verbose?: boolean; color: boolean }>();
    const verbosity: Verbosity = globals.quiet ? 'quiet' : globals.verbose ? 'verbose' : 'normal';
    const color = globals.color && !process.env.NO_COLOR && Boolean(process.stdout.isTTY);
    return { logger: createLogger(verbosity, globals.color && !process.env.NO_COLOR), signal: controller.signal, color, engine };
  };
  const run = (action: (ctx: CommandContext) => Promise<number>) => async () => {
    exitCode = await action(context());
  };

  pythonVersionOption(
    sandboxOptions(
      program.command('install <lockfile>', { isDefault: true }).description('install a lockfile in the sandbox and export site-packages (main job)'),
      'default',
    ),
  )
    .option('-o, --output <dir>', 'where to export site-packages', 'out/site-packages')
    .option('--build-image', 'run in the build image: the sandbox image with a C compiler from Debian')
    .action((lockfile: string, options: Record<string, unknown>) => run((ctx) => runInstall(lockfile, options, ctx))());

  pythonVersionOption(
    sandboxOptions(
      program
        .command('wheelhouse <lockfile>')
        .description('install the lock and build its sdists into wheels in the sandbox; on pass, write the wheels and a lock re-hashed to them'),
      'default',
    ),
  )
    .requiredOption('-o, --output <dir>', 'the wheelhouse directory (written only on pass, atomically)')
    .option('--build-image', 'run in the build image (default: when some requirement is locked to sdists only)')
    .option('--no-build-image', 'run in the plain sandbox image even when the lock has sdists')
    .action((lockfile: string, options: Record<string, unknown>) => run((ctx) => runWheelhouse(lockfile, options, ctx))());

  pythonVersionOption(
    sandboxOptions(
      program
        .command('lock <requirements.in>')
        .description('resolve a requirements.in inside the sandbox; write a hashed lock (or pylock.toml) only if the policy passes'),
      'default',
    ),
  )
    .option('-o, --output <file>', 'the lock (default: requirements.lock, or pylock.toml, beside the requirements.in)')
    .addOption(
      new Option('--lock-format <format>', "the lock's format (default: pylock when -o names a pylock.toml, else requirements)").choices([
        'requirements',
        'pylock',
      ]),
    )
    .action((file: string, options: Record<string, unknown>) => run((ctx) => runLock(file, options, ctx))());

  sandboxOptions(
    program
      .command('investigate <target>')
      .description('install name==version, a local wheel or sdist, or a lockfile, import every module, and show what each package did (never exports)'),
    'investigate',
  )
    .option('--import-timeout <seconds>', "limit on each module's import (without progress, the process is killed)", String(DEFAULT_IMPORT_TIMEOUT_SECONDS))
    .option(
      '--linger <seconds>',
      'keep each import process alive this long after its imports, so threads and timers act, traced',
      String(DEFAULT_LINGER_SECONDS),
    )
    .option('--max-modules <count>', 'the bound on modules and submodules imported in the run', String(DEFAULT_MAX_MODULES))
    .option('--clock-skew <duration>', 'run the imports with the wall clock this far ahead (30d, 12h, 90m, 45s; libfaketime)', '0')
    .action((target: string, options: Record<string, unknown>) => run((ctx) => runInvestigate(target, options, ctx))());

  const image = program.command('image').description('manage the sandbox image');
  image
    .command('build')
    .description('build the sandbox image from images/Dockerfile')
    .addOption(new Option('--bootstrap <distro>', 'debootstrap the base offline instead of pulling it').choices(['debian']))
    .option('--online', `build FROM the registry's python:3.11-slim`)
    .option('--tag <ref>', 'image tag (default: content hash of images/)')
    .option('--with-build-image', 'also build the build image (the sandbox image with a C compiler from Debian)')
    .action((options: Record<string, unknown>) => run((ctx) => runImageBuild(options, ctx))());

  program
    .command('gc')
    .description('remove the containers, temp dirs and staging dirs left behind by killed runs')
    .option('--all', 'also remove containers of runs that are still going (their dirs stay: each run removes its own)')
    .action((options: { all?: boolean }) => run((ctx) => runGc(options, ctx))());

  program
    .command('doctor')
    .description('engine, image, upstream index, pip configuration, cache, disk: what works, with a hint for what does not')
    .option('--index-url <url>', "upstream index (default: pip's configuration)")
    .option('--extra-index-url <url>', 'extra upstream index (repeatable)', collect, [])
    .option('--image <ref>', 'sandbox image (default: the tag of images/)')
    .option('--cache-dir <dir>', 'download cache (default: ~/.cache/sandbox-install)')
    .addOption(new Option('--format <format>', 'stdout format').choices(['text', 'json']).default('text'))
    .action((options: Record<string, unknown>) => run((ctx) => runDoctor(options, ctx))());

  program
    .command('policy')
    .description('policies')
    .command('check <file>')
    .description('validate a policy file or preset and print it resolved')
    .action((file: string) => run(() => runPolicyCheck(file))());

  try {
    await program.parseAsync(argv);
  } catch (error: unknown) {
    if (error instanceof CommanderError) {
      exitCode = error.exitCode === 0 ? EXIT.pass : EXIT.input;
    } else {
      exitCode = exitCodeFor(error);
      if (!(error instanceof InterruptedError)) {
        const message = error instanceof SandboxError ? error.message : String((error as Error)?.stack ?? error);
        process.stderr.write(`sandbox-install: ${escapeControl(message).replace(/\\x0a/g, '\n')}\n`);
        if (error instanceof SandboxError && error.hint) process.stderr.write(`  hint: ${error.hint}\n`);
      } else {
        process.stderr.write(`sandbox-install: ${error.message}; cleaned up\n`);
      }
    }
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
  }
  return exitCode;
}
