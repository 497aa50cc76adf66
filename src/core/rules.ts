/**
 * The rule catalogue: every rule id the tool can emit, with its family, default severity, a
 * one-line description and help for whoever reads the finding. Rule ids are a public contract
 * (`family.name`): reports, policies, the README and SARIF use them. `rules.test.ts` fails when a
 * rule is emitted that is not here, or is here and nothing emits it.
 */
import { PARTIAL_MIN_CHARS } from './canary.js';

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

export interface RuleInfo {
  /** The default severity a detector gives it; policies may override per rule or family. */
  severity: Severity;
  /** What it means, in one line. */
  description: string;
  /** What to do about it. */
  help: string;
}

const rule = (severity: Severity, description: string, help: string): RuleInfo => ({ severity, description, help });

export const CATALOGUE = {
  'integrity.hash-mismatch': rule(
    'critical',
    'upstream bytes differ from the hash in the lock',
    'The index served a different file than the one locked: do not trust this upstream until you know why.',
  ),
  'integrity.unlocked-request': rule(
    'high',
    'something asked the proxy for a project or file the lock does not cover',
    'A missing dependency shows up here (relock it); a request from build code is data looking for a way out.',
  ),
  'integrity.build-requirement': rule(
    'info',
    'a build requirement was served unpinned, as the policy allows (pip #11974)',
    'Pin it: `sandbox-install lock` writes <lock>.build.txt beside the lock, or add {name, version, sha256} to build.allow; strict allows none.',
  ),
  'integrity.upstream-refused': rule(
    'high',
    "the proxy refused an upstream file unread: a file: link outside its mirror's root, or not a regular file",
    'A mirror page pointing at host files is probing this machine; nothing was read, so the report holds no digest of it.',
  ),
  'integrity.file-conflict': rule(
    'high',
    'two or more locked distributions install the same files',
    'The export holds whichever pip installed last (opencv-python beside opencv-python-headless): lock only one of them.',
  ),
  'integrity.installed-mismatch': rule(
    'high',
    "an installed file of a locked wheel differs from that wheel's own RECORD",
    'Something other than pip changed what pip installed: look at the writer in the evidence.',
  ),
  'integrity.resolve-divergence': rule(
    'high',
    'two independent resolves (fresh canaries, another hostname) asked the proxy for different things, or resolved differently',
    'Build code chose what pip asked the index for, so the upstream may have learned a secret from the choice: see the requests seen in only one run, and do not lock from this input.',
  ),
  'lock.unhashed': rule('high', 'a requirement has no --hash', 'Lock with hashes (pip-compile --generate-hashes, uv export).'),
  'lock.unpinned': rule('high', 'a requirement is not pinned with ==', 'Lock exact versions.'),
  'lock.invalid': rule('high', 'the lockfile cannot give a hash-checked install', 'Fix the line the message names.'),
  'lock.index-url': rule('info', 'the lockfile names its own index', 'Honoured only when the policy sets allowLockIndexUrl.'),
  'network.dns': rule('high', 'a DNS query for any name', 'Nothing in an install needs a name resolved: the name itself may carry the data.'),
  'network.connect': rule(
    'high',
    'a TCP/UDP connect or send to anything but the index relay (or to the relay by a process that is not pip)',
    'Look at the address, port and argv in the evidence.',
  ),
  'network.http': rule('high', 'a request reached a fake service', 'The method, host and path show what it tried to send.'),
  'network.canary-exfil': rule(
    'critical',
    `a planted canary secret (fake credentials, token variables) left the sandbox, whole or ${PARTIAL_MIN_CHARS} characters of it, in any encoding`,
    'Credential theft in progress: the evidence names the secret, how much of it was seen, the channel, the encoding and the process.',
  ),
  'network.unix-socket': rule('high', 'a connect to a unix socket such as docker.sock', 'Build code has no business with local daemons.'),
  'fs.write-outside-target': rule(
    'high',
    "a file was created or changed outside the install target and pip's temp dirs, or the kernel refused the attempt",
    "Shell rc files, cron, other tools' configs: persistence. `denied: true` in the evidence: it was tried and stopped.",
  ),
  'fs.sensitive-read': rule(
    'high',
    'an attempt to open or probe a credentials path, even a failed one',
    'Credential theft; the sandbox has none, but the attempt is the intent.',
  ),
  'fs.target-tamper': rule(
    'high',
    "a process other than pip's installer changed the install target, or tried to and was refused",
    'Build code planting files pip did not install.',
  ),
  'fs.build-meddling': rule(
    'high',
    "a build reached into another build's files (its temp dirs, the wheels earlier builds made), or read a file an earlier build planted",
    'Each locked sdist is built alone; one that looks for another is after its sources or its wheels. Never relaxed: the evidence names the path, the reacher and the owner.',
  ),
  'fs.autorun-write': rule(
    'high',
    "a process other than pip's wrote, or tried to write, a .pth, a startup hook or a standard-library name into a site directory",
    'Code that would run at every interpreter start: persistence, refused or not. The evidence names the site directory and the writer.',
  ),
  'process.exec': rule(
    'high',
    'a shell or network tool ran, or a program from a writable place or an fd',
    'The argv shows the second stage it was meant to run.',
  ),
  'process.lingering': rule('high', 'a process outlived its phase or detached from its parent', 'A daemon left behind to act after the install.'),
  'process.forbidden-syscall': rule(
    'high',
    'a call the sandbox refuses was attempted: io_uring, pidfd_getfd, process_vm_readv/writev, ptrace, userfaultfd, bpf, perf_event_open, a keyring call, a persona change, or a non-native ABI (int 0x80, x32)',
    "No build needs one: each reaches past the package's own process (another process's memory or files, the kernel, the tracer). The call failed (EPERM), or the process was killed for a non-native ABI; do not install the package.",
  ),
  'static.pth-exec': rule(
    'high',
    'a .pth file with lines that run at every interpreter start',
    "Once reviewed, accept it with the knownGoodPth entry the finding prints: its name, sha256, owner and the sha256 of the code it imports (policies/known-good.json holds the reviewed ones; setuptools' -nspkg.pth template is recognised by structure).",
  ),
  'static.pth-path': rule(
    'high',
    'a .pth path line that resolves outside site-packages (or through a symlink out of it), or names a file',
    'It puts code the export does not hold, or a zip archive the scan does not open, on sys.path.',
  ),
  'static.autoload-entry-point': rule(
    'low',
    'an entry point that a tool loads at its every start (pytest11, flake8, …)',
    'Code that runs whenever that tool runs: a warning by default (the default policy maps it to warn).',
  ),
  'static.import-shadowing': rule(
    'high',
    "a distribution's module shadows another distribution's",
    'Whose code runs on import is not the one the name promises.',
  ),
  'static.invalid-source': rule(
    'high',
    'an exported Python source does not compile, and bytecode or a changed file could make it run',
    'The cover for a shipped, unreviewed .pyc: its wheel ships bytecode for it, or it is not what a locked wheel shipped.',
  ),
  'static.inert-source': rule(
    'low',
    'a Python source that does not compile, shipped as it is by its locked wheel with no bytecode for it',
    'It cannot run: importing it raises SyntaxError (a template named .py, a Python 2 module). A warning by default.',
  ),
  'static.record-unhashed': rule(
    'info',
    "RECORD rows without a usable sha256 (none, or hex digests) for files byte-identical to the distribution's locked wheel",
    'A packaging defect, not a change: the verified wheel vouches for the bytes.',
  ),
  'static.stdlib-backport': rule(
    'low',
    'a reviewed backport of a standard-library module (policies/known-good.json names its distribution, file and sha256)',
    "With the export on PYTHONPATH it replaces Python 3.11's own module: drop it from the lock when nothing needs it. A warning by default.",
  ),
  'static.startup-hook': rule(
    'high',
    'sitecustomize or usercustomize in site-packages or in a directory a .pth puts on sys.path',
    'Runs at every interpreter start.',
  ),
  'static.stdlib-shadowing': rule(
    'high',
    'a top-level module or package named like a standard-library module, in site-packages or a directory a .pth adds',
    "With the export on PYTHONPATH it is imported instead of the standard library's module (and wherever the interpreter lacks that module). A backport for older Pythons (argparse, enum34, typing) does this too: drop it from the lock.",
  ),
  'static.unrecorded-file': rule(
    'high',
    'a file no RECORD claims, a RECORD hash mismatch, or a dist-info the lock does not name',
    'Something was added behind pip.',
  ),
  'static.script-shadowing': rule(
    'high',
    'a console script named like a system or Python tool, from a distribution other than that tool',
    "It would run instead of the tool of that name. A tool's own distribution installing its own name (pip's pip) is accepted by knownGoodScripts.",
  ),
  'static.special-file': rule('high', 'a symlink out of the target, a setuid/setgid bit, a device, a fifo, or a reserved name', 'Never exported.'),
  'monitor.tampered': rule(
    'critical',
    'the tracer or the monitor was attacked, blinded or could not vouch for the run',
    'The run cannot be trusted; the evidence says which part failed.',
  ),
  'resource.timeout': rule('high', 'the run passed --timeout', 'Raise --timeout for a slow build; an endless loop is the usual cause.'),
  'resource.pids': rule('high', 'the pids limit was hit', 'A fork bomb, or a build that forks far more than builds do.'),
  'resource.memory': rule('high', 'the memory limit was hit', 'The install was killed by the OOM killer.'),
  'resource.disk': rule(
    'high',
    "the sandbox's writes passed the disk cap (limits.diskMb), or the installed tree passed the export's size or file-count cap",
    'The run was stopped, or nothing that large is exported; raise limits.diskMb only for a build known to need it.',
  ),
  'install.failed': rule('high', 'pip failed for a reason no other finding explains', "Inconclusive (exit 4): pip's last lines are in the report."),
  'install.upstream-failed': rule(
    'high',
    'a locked page or file could not be had from any upstream: down, timing out, an HTTP error, a cut body, TLS, a missing file: file, or not an index page',
    'Inconclusive (exit 4), not a verdict on the package: the evidence names the upstream (credentials removed), the URL and why; fix the index or pick another with --index-url.',
  ),
  'policy.package-denied': rule('high', 'a package the policy denies is in the lock', 'Remove it, or change packages.deny.'),
  'policy.sdist-forbidden': rule(
    'high',
    'the policy allows wheels only, and a lock entry has only an sdist (refused before any container starts)',
    'Lock a version that has a wheel, build one with `sandbox-install wheelhouse`, or use a policy without onlyBinary.',
  ),
  'policy.suppression-expired': rule(
    'low',
    'a suppression in the policy is past its expiry date and no longer applies',
    'Review the finding it suppressed; renew the suppression with a new expires date, or remove it.',
  ),
  'export.unsafe-entry': rule('high', 'the exported archive held an entry that would escape or is not a regular file or directory', 'Never extracted.'),
  'export.unexpected-file': rule(
    'high',
    'the build phase left a file that is not the one wheel built from a locked sdist',
    'Nothing is written: a build produced a wheel for another project or version, or planted a file beside the wheels.',
  ),
} as const satisfies Record<string, RuleInfo>;

export type RuleId = keyof typeof CATALOGUE;
export const RULE_IDS = Object.keys(CATALOGUE) as RuleId[];

/** The family of a rule id: `network` for `network.dns`. */
export function familyOf(rule: RuleId): string {
  return rule.slice(0, rule.indexOf('.'));
}

/** The catalogue as a markdown table: the README's rule list is this, checked by rules.test.ts. */
export function ruleTable(): string {
  const rows = RULE_IDS.map((id) => `| \`${id}\` | ${CATALOGUE[id].severity} | ${CATALOGUE[id].description} |`);
  return ['| rule | default severity | fires when |', '|---|---|---|', ...rows].join('\n');
}
