import { noPipOptions } from '../lock/pip-options.js';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import type { LockPlan } from '../lock/types.js';
import type { Policy } from '../policy/schema.js';
import { finding, type Finding } from '../core/finding.js';
import { DEFAULT_LIMITS, type InstallOutcome, type SupervisorStatus } from '../core/outcome.js';
import { makeCanaries } from '../core/canary.js';
import { observe, type ObserveInput } from './index.js';

// A run as the session hands it over: pip (pid 11) forks a build hook (pid 18) that works in
// evil-pkg's build dir, so attribution blames evil-pkg for everything 18 and its children do.
const BUILD_DIR = '/tmp/pip-install-q8_72yms/evil-pkg_2c8a23b76e77438d94495cc80530245f';
const OTHER_DIR = '/tmp/pip-install-q8_72yms/other-pkg_0123456789abcdef0123456789abcdef';
const T = 1795820988;
const at = (offset: number) => (T + offset).toFixed(6);
const iso = (offset: number) => new Date((T + offset) * 1000).toISOString();

/** A capture event's fields when nothing reached the monitor beyond the name. */
const NOTHING_KEPT = { bytes: 0, payload: '', cut: false };
const RELAY = 'connect(3, {sa_family=AF_INET, sin_port=htons(3141), sin_addr=inet_addr("127.0.0.1")}, 16) = 0';
const PIP = [
  `11 ${at(-8)} execve("/usr/bin/python3", ["python3", "-m", "pip", "install", "-r", "/input/requirements.lock"], 0x7ffd /* 5 vars */) = 0`,
  `11 ${at(-7.9)} ${RELAY}`,
];
/** pid 18: evil-pkg's build_wheel hook. */
const HOOK = [
  `11 ${at(0)} vfork() = 18`,
  `18 ${at(0.01)} execve("/usr/bin/python3.11", ["/usr/bin/python3.11", "_in_process.py", "build_wheel"], 0x7ffd /* 6 vars */) = 0`,
  `18 ${at(0.02)} chdir("${BUILD_DIR}") = 0`,
];
/** pid 19: other-pkg's build hook. */
const OTHER_HOOK = [
  `11 ${at(0.03)} vfork() = 19`,
  `19 ${at(0.04)} execve("/usr/bin/python3.11", ["/usr/bin/python3.11", "_in_process.py", "build_wheel"], 0x7ffd /* 6 vars */) = 0`,
  `19 ${at(0.05)} chdir("${OTHER_DIR}") = 0`,
];

const STATUS: SupervisorStatus = { rootPid: 11, pip: { how: 'exited', value: 0 }, tracerIntact: true, tracerExit: 0, lingering: [] };

function outcome(trace: string[], overrides: Partial<InstallOutcome> = {}): InstallOutcome {
  return {
    phase: 'install',
    pipExitCode: 0,
    limits: DEFAULT_LIMITS,
    timedOut: false,
    oomKilled: false,
    diskExceeded: null,
    monitorAlive: true,
    pipOutput: '',
    findings: [],
    monitorEvents: [],
    status: STATUS,
    trace: trace.join('\n'),
    changes: [],
    timings: {},
    ...overrides,
  };
}

const PLAN: LockPlan = {
  file: 'requirements.lock',
  requirements: [
    { name: 'six', rawName: 'six', version: '1.16.0', extras: [], marker: null, sha256: ['a'.repeat(64)], line: 1 },
    { name: 'evil-pkg', rawName: 'evil-pkg', version: '1.0', extras: [], marker: null, sha256: ['b'.repeat(64)], line: 2 },
  ],
  indexUrl: null,
  extraIndexUrls: [],
  pipOptions: noPipOptions(),
};

const POLICY: Policy = {
  name: 'test',
  rules: { 'network.*': 'fail' },
  build: { allow: [], pins: [] },
  onlyBinary: false,
  allowLockIndexUrl: false,
  knownGoodPth: [],
  knownGoodScripts: [],
  knownGoodStdlib: [],
  severities: {},
  packages: { allow: [], deny: [] },
  process: { execWatch: ['sh', 'curl'] },
  writes: { allow: [] },
  limits: {},
  suppressions: [],
  expiredSuppressions: [],
  export: true,
};

let seed = 0;
/** Fixed, distinct values: the same canaries on every test run. */
const CANARIES = makeCanaries({ random: (n) => createHash('sha512').update(String(seed++)).digest().subarray(0, n) });
const input = (o: InstallOutcome, archive: Readable | null = null): ObserveInput => ({
  outcome: o,
  distributions: PLAN.requirements.map((r) => r.name),
  policy: POLICY,
  archive,
  wheels: [],
  reservedNames: ['.sandbox-install-manifest.json'],
  canaries: CANARIES,
});
const exited = (pid: number, offset: number, code = 0) => `${pid} ${at(offset)} +++ exited with ${code} +++`;
const rulesOf = (findings: Finding[]) => findings.map((f) => f.rule);

describe('observe: a clean run', () => {
  it('finds nothing in a run where pip and the hook ended normally', async () => {
    const observation = await observe(input(outcome([...PIP, ...HOOK, exited(18, 1), exited(11, 2)])));
    expect(observation.findings).toEqual([]);
    expect(observation.processes.map((p) => [p.pid, p.package, p.exitCode])).toEqual([
      [11, null, 0],
      [18, 'evil-pkg', 0],
    ]);
    expect(observation.network).toEqual([expect.objectContaining({ source: 'tracer', pid: 11, address: '127.0.0.1', port: 3141, package: null })]);
    expect(observation.filesystem).toEqual([]);
  });

  it('fails closed when the supervisor reported but the trace cannot be read back', async () => {
    // A trace over the read cap comes back as null: that must not read as "nothing happened".
    const { findings } = await observe(input(outcome([], { trace: null })));
    expect(findings).toEqual([expect.objectContaining({ rule: 'monitor.tampered', severity: 'critical', package: null, evidence: { traceMissing: true } })]);
  });

  it('fails closed when the monitor container died before the install ended', async () => {
    const { findings } = await observe(input(outcome([...PIP, exited(11, 0)], { monitorAlive: false })));
    expect(findings.map((f) => [f.rule, f.evidence])).toEqual([['monitor.tampered', { monitorAlive: false }]]);
  });

  it('fails closed when the tracer had to be forced to stop', async () => {
    const base = outcome([...PIP, exited(11, 0)]);
    const { findings } = await observe(input({ ...base, status: { ...base.status!, tracerForcedStop: true } }));
    expect(findings.map((f) => [f.rule, f.evidence])).toEqual([['monitor.tampered', { tracerForcedStop: true }]]);
  });
});

describe('observe: how the run ended', () => {
  it('blames a timeout on the one package whose process was still running', async () => {
    // Nothing exited: the run was cut short. pip itself (null) does not count.
    const { findings } = await observe(
      input(outcome([...PIP, ...HOOK], { timedOut: true, pipExitCode: null, status: null, limits: { ...DEFAULT_LIMITS, timeoutMs: 30_000 } })),
    );
    expect(findings).toEqual([
      {
        rule: 'resource.timeout',
        severity: 'high',
        package: 'evil-pkg',
        message: 'the install ran past --timeout 30s and was killed',
        evidence: { timeoutSeconds: 30 },
      },
    ]);
  });

  it('leaves a timeout unattributed when several packages were running, or none', async () => {
    const several = await observe(input(outcome([...PIP, ...HOOK, ...OTHER_HOOK], { timedOut: true, pipExitCode: null })));
    expect(several.findings).toEqual([expect.objectContaining({ rule: 'resource.timeout', package: null })]);

    const onlyPip = await observe(input(outcome([...PIP, ...HOOK, exited(18, 1)], { timedOut: true, pipExitCode: null })));
    expect(onlyPip.findings).toEqual([expect.objectContaining({ rule: 'resource.timeout', package: null })]);
  });

  it('does not blame a package whose process had already exited', async () => {
    const { findings } = await observe(input(outcome([...PIP, ...HOOK, exited(18, 1), ...OTHER_HOOK], { timedOut: true, pipExitCode: null })));
    expect(findings).toEqual([expect.objectContaining({ rule: 'resource.timeout', package: 'other-pkg' })]);
  });

  it('reports the memory limit with the running package', async () => {
    const { findings } = await observe(input(outcome([...PIP, ...OTHER_HOOK], { oomKilled: true, pipExitCode: 137 })));
    expect(findings).toEqual([
      {
        rule: 'resource.memory',
        severity: 'high',
        package: 'other-pkg',
        message: 'the install hit the memory limit and was killed',
        evidence: { limitBytes: DEFAULT_LIMITS.memoryBytes },
      },
    ]);
  });

  it('reports the disk cap with the running package, alone when the stop cost the supervisor its record, and with the tracer checks otherwise', async () => {
    const written = DEFAULT_LIMITS.diskBytes + 5 * 1024 ** 2;
    const stopped = await observe(input(outcome([...PIP, ...OTHER_HOOK], { diskExceeded: written, status: null, pipExitCode: null })));
    expect(stopped.findings).toEqual([
      {
        rule: 'resource.disk',
        severity: 'high',
        package: 'other-pkg',
        message: 'the sandbox wrote 10245 MiB to its filesystem, past the 10240 MiB disk cap, and was stopped',
        evidence: { writtenBytes: written, limitBytes: DEFAULT_LIMITS.diskBytes },
      },
    ]);
    // Caught at the end of a run that finished on its own: the tracer's record still has to hold.
    const ended = await observe(input(outcome([...PIP, exited(11, 0)], { diskExceeded: written, status: { ...STATUS, tracerIntact: false } })));
    expect(ended.findings.map((f) => f.rule)).toEqual(['resource.disk']);
    const forced = await observe(input(outcome([...PIP, exited(11, 0)], { diskExceeded: written, status: { ...STATUS, tracerForcedStop: true } })));
    expect(forced.findings.map((f) => f.rule)).toEqual(['resource.disk', 'monitor.tampered']);
  });

  it('fails closed when the supervisor status is missing', async () => {
    const { findings } = await observe(input(outcome([...PIP, exited(11, 1)], { status: null })));
    expect(findings).toEqual([
      {
        rule: 'monitor.tampered',
        severity: 'critical',
        package: null,
        message: "the tracer ended before pip did, or its record of pip's end is missing",
        evidence: { tracerExit: null, statusMissing: true },
      },
    ]);
  });

  it('fails closed when the tracer did not see pip end', async () => {
    const { findings } = await observe(input(outcome([...PIP], { status: { ...STATUS, pip: null, tracerIntact: false, tracerExit: 137 } })));
    expect(findings).toEqual([
      {
        rule: 'monitor.tampered',
        severity: 'critical',
        package: null,
        message: "the tracer ended before pip did, or its record of pip's end is missing",
        evidence: { tracerExit: 137, statusMissing: false },
      },
    ]);
  });
});

describe('observe: unlocked requests from the proxy', () => {
  const refused = (time: unknown, pkg: string | null = null) =>
    finding(
      'integrity.unlocked-request',
      'high',
      'refused GET for requests, which the lock does not cover',
      { method: 'GET', path: '/simple/requests/', project: 'requests', time },
      pkg,
    );

  it('blames the package whose process connected to the relay just before the request', async () => {
    const { findings } = await observe(input(outcome([...PIP, ...HOOK, `18 ${at(0.5)} ${RELAY}`], { findings: [refused(iso(0.6))] })));
    // The hook's own connect to the relay is a finding too: only pip may use it.
    expect(findings.filter((f) => f.rule === 'network.connect').map((f) => [f.package, f.evidence.pid, f.evidence.host])).toEqual([
      ['evil-pkg', 18, 'index relay'],
    ]);
    expect(findings.filter((f) => f.rule !== 'network.connect')).toEqual([
      {
        rule: 'integrity.unlocked-request',
        severity: 'high',
        package: 'evil-pkg',
        message: 'refused GET for requests, which the lock does not cover',
        evidence: { method: 'GET', path: '/simple/requests/', project: 'requests', time: iso(0.6), pid: 18 },
      },
    ]);
  });

  it("skips pip's own relay connects, even nearer ones", async () => {
    const { findings } = await observe(
      input(outcome([...PIP, ...HOOK, `18 ${at(0.5)} ${RELAY}`, `11 ${at(0.55)} ${RELAY}`], { findings: [refused(iso(0.6))] })),
    );
    expect(findings[0]).toMatchObject({ package: 'evil-pkg', evidence: { pid: 18 } });
  });

  it('takes the latest package connect, and none that came after the request', async () => {
    const { findings } = await observe(
      input(
        outcome([...PIP, ...HOOK, ...OTHER_HOOK, `18 ${at(0.5)} ${RELAY}`, `19 ${at(0.7)} ${RELAY}`, `18 ${at(2)} ${RELAY}`], {
          findings: [refused(iso(0.8))],
        }),
      ),
    );
    expect(findings[0]).toMatchObject({ package: 'other-pkg', evidence: { pid: 19 } });
  });

  it('leaves a request unattributed when no package connected in the 5 s before it', async () => {
    const { findings } = await observe(input(outcome([...PIP, ...HOOK, `18 ${at(0.5)} ${RELAY}`], { findings: [refused(iso(6))] })));
    expect(findings[0]).toMatchObject({ package: null });
    expect(findings[0]?.evidence).not.toHaveProperty('pid');
  });

  it('keeps a finding that already names a package, or has no time to go by', async () => {
    const trace = [...PIP, ...HOOK, `18 ${at(0.5)} ${RELAY}`];
    const { findings } = await observe(
      input(
        outcome(trace, { findings: [refused(iso(0.6), 'six'), refused(T + 0.6), finding('integrity.hash-mismatch', 'critical', 'x', { time: iso(0.6) })] }),
      ),
    );
    expect(findings.filter((f) => f.rule !== 'network.connect').map((f) => [f.rule, f.package, f.evidence.pid])).toEqual([
      ['integrity.unlocked-request', 'six', undefined],
      ['integrity.unlocked-request', null, undefined],
      ['integrity.hash-mismatch', null, undefined],
    ]);
  });
});

describe('observe: wiring the witnesses together', () => {
  it('attributes network, filesystem and process findings through the process tree, in that order after the end findings', async () => {
    const trace = [
      ...PIP,
      ...HOOK,
      `18 ${at(0.1)} connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0`,
      `18 ${at(0.2)} connect(4, {sa_family=AF_UNIX, sun_path="/var/run/docker.sock"}, 23) = -1 ENOENT (No such file or directory)`,
      `18 ${at(0.3)} openat(AT_FDCWD, "/home/user/.bashrc", O_WRONLY|O_CREAT|O_APPEND, 0666) = 3`,
      `18 ${at(0.4)} vfork() = 20`,
      `20 ${at(0.41)} execve("/usr/bin/sh", ["sh", "-c", "id"], 0x7ffd /* 6 vars */) = 0`,
      `20 ${at(0.42)} kill(1, SIGKILL) = -1 EPERM (Operation not permitted)`,
    ];
    const { findings } = await observe(
      input(
        outcome(trace, {
          status: null,
          monitorEvents: [{ type: 'dns', name: 'collect.x.invalid', qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:40000', ...NOTHING_KEPT, time: T + 0.11 }],
          changes: [
            { path: '/home', kind: 'modified' },
            { path: '/home/user', kind: 'modified' },
            { path: '/home/user/.bashrc', kind: 'modified' },
            { path: '/opt/target/lib/python3.11/site-packages/six.py', kind: 'added' },
          ],
        }),
      ),
    );
    expect(findings.map((f) => [f.rule, f.package])).toEqual([
      ['monitor.tampered', null],
      ['network.dns', 'evil-pkg'],
      ['network.unix-socket', 'evil-pkg'],
      ['fs.write-outside-target', 'evil-pkg'],
      ['process.exec', 'evil-pkg'],
      ['monitor.tampered', 'evil-pkg'],
    ]);
    expect(findings[3]?.evidence).toEqual({ path: '/home/user/.bashrc', kind: 'modified', pid: 18, argv: '/usr/bin/python3.11 _in_process.py build_wheel' });
    expect(findings[4]?.evidence).toMatchObject({ path: '/usr/bin/sh', argv: 'sh -c id', pid: 20 });
  });

  it('finds a canary sent out in a DNS name and in a refused proxy path, blamed on the process that sent it', async () => {
    const secret = CANARIES.canaries.find((c) => c.name.endsWith('aws_secret_access_key'))!.value;
    const netrc = CANARIES.canaries.find((c) => c.name === '~/.netrc password')!.value;
    const hex = Buffer.from(secret).toString('hex');
    const trace = [
      ...PIP,
      ...HOOK,
      `18 ${at(0.1)} connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0`,
      `18 ${at(0.5)} ${RELAY}`,
    ];
    const refused = finding('integrity.unlocked-request', 'high', 'refused GET', { method: 'GET', path: `/simple/${netrc}/`, project: null, time: iso(0.51) });
    const { findings } = await observe(
      input(
        outcome(trace, {
          findings: [refused],
          monitorEvents: [
            {
              type: 'dns',
              name: `${hex.slice(0, 40)}.${hex.slice(40)}.x.invalid`,
              qtype: 1,
              answer: '127.1.0.1',
              src: '127.0.0.1:40000',
              ...NOTHING_KEPT,
              time: T + 0.11,
            },
          ],
          changes: CANARIES.files.map((f) => ({ path: `/home/user/${f.path}`, kind: 'added' as const })),
        }),
      ),
    );
    const exfil = findings.filter((f) => f.rule === 'network.canary-exfil');
    expect(exfil.map((f) => [f.package, f.severity, f.evidence.secret, f.evidence.channel, f.evidence.encoding, f.evidence.pid])).toEqual([
      ['evil-pkg', 'critical', '~/.aws/credentials aws_secret_access_key', 'DNS name', 'hex', 18],
      ['evil-pkg', 'critical', '~/.netrc password', 'proxy request path', 'plain', 18],
    ]);
    // The planted files are ours: their appearance in the diff is no finding.
    expect(findings.filter((f) => f.rule === 'fs.write-outside-target')).toEqual([]);
  });

  it('searches what the monitor captured and what the tracer saw sent, and leaves the captured bytes out of the report', async () => {
    const npm = CANARIES.canaries.find((c) => c.name === '~/.npmrc _authToken')!.value;
    const github = CANARIES.canaries.find((c) => c.name === '~/.git-credentials github.com token')!.value;
    const stream = Buffer.from(`${'x'.repeat(300)}${github}`);
    const trace = [
      ...PIP,
      ...HOOK,
      `18 ${at(0.2)} connect(5<socket:[90]>, {sa_family=AF_INET, sin_port=htons(4444), sin_addr=inet_addr("127.1.0.2")}, 16) = 0`,
      `18 ${at(0.21)} sendto(5<socket:[90]>, "${stream.toString('latin1')}", ${stream.length}, 0, NULL, 0) = ${stream.length}`,
      `18 ${at(0.3)} sendto(6<socket:[91]>, "${npm}", ${npm.length}, 0, {sa_family=AF_INET, sin_port=htons(9999), sin_addr=inet_addr("127.1.0.3")}, 16) = ${npm.length}`,
    ];
    const tcp = {
      type: 'tcp' as const,
      dst: '127.1.0.2:4444',
      src: '127.0.0.1:40001',
      port: 4444,
      firstBytes: 'x'.repeat(256),
      bytes: stream.length,
      payload: stream.toString('base64'),
      cut: false,
      time: T + 0.22,
    };
    const observed = await observe(input(outcome(trace, { monitorEvents: [tcp] })));
    const exfil = observed.findings.filter((f) => f.rule === 'network.canary-exfil');
    // Offsets are of the secret part: after the `ghp_` and `npm_` every such token starts with.
    expect(exfil.map((f) => [f.package, f.evidence.channel, f.evidence.to, f.evidence.offset])).toEqual([
      ['evil-pkg', 'TCP stream', '127.1.0.2:4444', 304],
      ['evil-pkg', 'sendto payload', '127.1.0.3:9999', 4],
    ]);
    expect(observed.network.find((e) => e.type === 'tcp')).toMatchObject({ firstBytes: 'x'.repeat(256), bytes: stream.length });
    expect(observed.network.some((e) => 'payload' in e)).toBe(false);
  });

  it('takes execWatch from the policy, lingering processes from the status, and accepts the input mounts', async () => {
    const trace = [...PIP, ...HOOK, `18 ${at(0.4)} vfork() = 20`, `20 ${at(0.41)} execve("/usr/bin/wget", ["wget", "http://x"], 0x7ffd /* 6 vars */) = 0`];
    const base = outcome(trace, {
      status: { ...STATUS, lingering: [{ pid: 20, ppid: 1, argv: ['wget', 'http://x'] }] },
      changes: [
        { path: '/input', kind: 'added' },
        { path: '/input/requirements.lock', kind: 'added' },
        { path: '/input/phases.json', kind: 'added' },
        { path: '/var/lib/sandbox-install/install.strace.log', kind: 'added' },
        { path: '/tmp/pip-unpack-abc/x.whl', kind: 'added' },
      ],
    });
    expect(rulesOf((await observe(input(base))).findings)).toEqual(['process.lingering']);
    const watching = await observe({ ...input(base), policy: { ...POLICY, process: { execWatch: ['wget'] } } });
    expect(watching.findings.map((f) => [f.rule, f.package])).toEqual([
      ['process.exec', 'evil-pkg'],
      ['process.lingering', 'evil-pkg'],
    ]);
  });
});

// ---------------------------------------------------------------- the static path

/** A site-packages archive as `getArchive` streams it: a `site-packages/` root, directories first. */
function siteArchive(files: Record<string, string>): Readable {
  const p = pack();
  p.entry({ name: 'site-packages/', type: 'directory', mode: 0o755 });
  const dirs = new Set<string>();
  for (const [name, content] of Object.entries(files)) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      p.entry({ name: `site-packages/${dir}/`, type: 'directory', mode: 0o755 });
    }
    p.entry({ name: `site-packages/${name}`, type: 'file', mode: 0o644 }, content);
  }
  p.finalize();
  return p as unknown as Readable;
}

const recordHash = (content: string) => `sha256=${createHash('sha256').update(content).digest('base64url')}`;
const SIX_PY = '"""six"""\n';
const SITE = '/opt/target/lib/python3.11/site-packages';

describe('observe: the wheel dir', () => {
  const WHEEL = '/tmp/pip-wheelhouse/evil_pkg-1.0-py3-none-any.whl';
  const writes = [
    // pip's installer (the traced root, pid 11) leaves the built wheel; the hook then swaps it.
    `11 ${at(0.5)} openat(AT_FDCWD, "${WHEEL}", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 5`,
    `18 ${at(0.6)} rename("/tmp/pip-install-x/evil.whl", "${WHEEL}") = 0`,
  ];
  const tamper = (findings: Finding[]) => findings.filter((f) => f.rule === 'fs.target-tamper').map((f) => [f.package, f.evidence.syscall, f.evidence.path]);

  it("is pip's installer's in the build phase: a build hook that writes a wheel there is fs.target-tamper", async () => {
    const { findings } = await observe(input(outcome([...PIP, ...HOOK, ...writes], { phase: 'build' })));
    expect(tamper(findings)).toEqual([['evil-pkg', 'rename', WHEEL]]);
  });

  it("is nobody's in a later phase: even the installer writing there is fs.target-tamper", async () => {
    const { findings } = await observe(input(outcome([...PIP, ...HOOK, ...writes])));
    expect(tamper(findings)).toEqual([
      [null, 'openat', WHEEL],
      ['evil-pkg', 'rename', WHEEL],
    ]);
  });
});

describe('observe: the installed tree', () => {
  it('reports a dist-info the lock does not name, and a stray file by the process that wrote it', async () => {
    const archive = siteArchive({
      'six.py': SIX_PY,
      'six-1.16.0.dist-info/RECORD': `six.py,${recordHash(SIX_PY)},${SIX_PY.length}\r\nsix-1.16.0.dist-info/RECORD,,\r\n`,
      'ghost-2.0.dist-info/RECORD': 'ghost-2.0.dist-info/RECORD,,\r\n',
      'sneaky.py': 'import os\n',
    });
    const trace = [
      ...PIP,
      ...HOOK,
      `18 ${at(0.3)} openat(AT_FDCWD, "${SITE}/sneaky.py", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3`,
      `18 ${at(0.31)} openat(AT_FDCWD, "${SITE}/ghost-2.0.dist-info/RECORD", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 4`,
    ];
    const { findings } = await observe(input(outcome(trace), archive));
    const tamper = (file: string) => ({
      // A build hook writing into the target at all is the attack, whatever the scan finds after.
      rule: 'fs.target-tamper',
      severity: 'high',
      package: 'evil-pkg',
      message: `openat ${SITE}/${file} in the install target by a process that is not pip's installer`,
      evidence: { path: `${SITE}/${file}`, syscall: 'openat', ok: true, denied: false, pid: 18, argv: '/usr/bin/python3.11 _in_process.py build_wheel' },
    });
    expect(findings).toEqual([
      tamper('sneaky.py'),
      tamper('ghost-2.0.dist-info/RECORD'),
      {
        rule: 'static.unrecorded-file',
        severity: 'high',
        package: 'evil-pkg',
        message: 'sneaky.py is not listed in any RECORD',
        evidence: { path: 'sneaky.py', claimedBy: [], writerPid: 18 },
      },
      {
        // The forged dist-info goes to the package whose process wrote inside it.
        rule: 'static.unrecorded-file',
        severity: 'high',
        package: 'evil-pkg',
        message: 'ghost-2.0.dist-info is in site-packages but the lock does not name ghost',
        evidence: { path: 'ghost-2.0.dist-info', reason: 'distribution not in the lock', writerPid: 18 },
      },
    ]);
  });

  it('finds nothing in a tree that holds only what the lock names', async () => {
    const archive = siteArchive({
      'six.py': SIX_PY,
      'six-1.16.0.dist-info/RECORD': `six.py,${recordHash(SIX_PY)},${SIX_PY.length}\r\nsix-1.16.0.dist-info/RECORD,,\r\n`,
      'Evil_Pkg-1.0.dist-info/RECORD': 'Evil_Pkg-1.0.dist-info/RECORD,,\r\n',
    });
    const { findings } = await observe(input(outcome([...PIP, exited(11, 1)]), archive));
    expect(findings).toEqual([]);
  });

  it('leaves a stray file unattributed when the tracer saw no one write it', async () => {
    const { findings } = await observe(input(outcome([...PIP, ...HOOK]), siteArchive({ 'sneaky.py': 'x' })));
    expect(findings).toEqual([expect.objectContaining({ rule: 'static.unrecorded-file', package: null, evidence: { path: 'sneaky.py', claimedBy: [] } })]);
  });
});
