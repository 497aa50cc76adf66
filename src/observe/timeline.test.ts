import { describe, expect, it } from 'vitest';
import { timeline, TIMELINE_PER_PACKAGE } from './timeline.js';
import { parseTrace } from './trace.js';

const input = (lines: string[], packageOf: (pid: number) => string | null) => ({
  trace: parseTrace(lines.join('\n')),
  network: [],
  packageOf,
  started: 100,
  expectedWrites: (p: string) => p.startsWith('/opt/target/'),
  credentialHomes: ['/home/user'],
  relay: { address: '127.0.0.1', port: 3141 },
  dnsServer: { address: '127.0.0.53', port: 53 },
});

describe('timeline', () => {
  it("lists a package's execs, writes and sensitive paths with offsets, once per path and process, and leaves pip's own out", () => {
    const entries = timeline(
      input(
        [
          '10 100.5 execve("/usr/bin/python3", ["python3", "-m", "pip"], 0x1 /* 0 vars */) = 0',
          '11 101.25 execve("/usr/bin/sh", ["sh", "-c", "id"], 0x1 /* 0 vars */) = 0',
          '11 101.5 openat(AT_FDCWD, "/home/user/.aws/credentials", O_RDONLY) = 3',
          '11 101.6 newfstatat(AT_FDCWD, "/home/user/.aws/credentials", 0x1, 0) = 0',
          '11 101.75 openat(AT_FDCWD, "/tmp/stage2", O_WRONLY|O_CREAT, 0644) = 4',
          '11 101.8 openat(AT_FDCWD, "/opt/target/x.py", O_WRONLY|O_CREAT, 0644) = 5',
        ],
        (pid) => (pid === 11 ? 'evil' : null),
      ),
    );
    expect(entries.map((e) => [e.offset, e.package, e.kind, e.what])).toEqual([
      [1.25, 'evil', 'exec', 'sh -c id'],
      [1.5, 'evil', 'sensitive', 'openat /home/user/.aws/credentials'],
      [1.75, 'evil', 'write', '/tmp/stage2'],
    ]);
  });

  it(`keeps ${TIMELINE_PER_PACKAGE} entries per package and counts the rest in a last line at the last kept offset`, () => {
    const lines = Array.from({ length: TIMELINE_PER_PACKAGE + 5 }, (_, i) => `11 ${100 + i}.0 execve("/usr/bin/true", ["true", "${i}"], 0x1 /* 0 vars */) = 0`);
    const entries = timeline(input(lines, () => 'noisy'));
    expect(entries).toHaveLength(TIMELINE_PER_PACKAGE + 1);
    expect(entries.at(-1)).toEqual({ offset: TIMELINE_PER_PACKAGE - 1, package: 'noisy', kind: 'more', what: '5 more not shown', pid: null });
  });
});
