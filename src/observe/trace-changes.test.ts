import { describe, expect, it } from 'vitest';
import { changesFromTrace } from './trace-changes.js';
import { parseTrace } from './trace.js';

const trace = (lines: string[]) => parseTrace([...lines, '10 9.000000 +++ exited with 0 +++', ''].join('\n'), { initialCwd: '/home/user' });

describe('changesFromTrace: the diff a trace shows, when the engine could not give one', () => {
  it('lists what successful calls created, changed and removed, as Docker lists it', () => {
    const changes = changesFromTrace(
      trace([
        '10 1.000000 mkdir("/tmp/deep", 0777) = 0',
        '10 1.100000 openat(AT_FDCWD</home/user>, "/tmp/deep/f", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</tmp/deep/f>',
        '10 1.200000 openat(AT_FDCWD</home/user>, ".bashrc", O_WRONLY|O_APPEND) = 3</home/user/.bashrc>',
        '10 1.300000 unlink("/home/user/.profile") = 0',
        '10 1.400000 rename("/tmp/a", "/tmp/b") = 0',
        '10 1.500000 chmod("/home/user/.pypirc", 0644) = 0',
        '10 1.600000 symlink("/etc", "/tmp/link") = 0',
      ]),
    );
    expect(changes).toEqual([
      { path: '/tmp/deep', kind: 'added' },
      { path: '/tmp/deep/f', kind: 'added' },
      { path: '/home/user/.bashrc', kind: 'modified' },
      { path: '/home/user/.profile', kind: 'deleted' },
      { path: '/tmp/a', kind: 'deleted' },
      { path: '/tmp/b', kind: 'added' },
      { path: '/home/user/.pypirc', kind: 'modified' },
      { path: '/tmp/link', kind: 'added' },
    ]);
  });

  it('leaves out refused calls, what was made and removed again, and the kernel and device trees', () => {
    const changes = changesFromTrace(
      trace([
        '10 1.000000 openat(AT_FDCWD, "/etc/passwd", O_WRONLY) = -1 EACCES (Permission denied)',
        '10 1.100000 openat(AT_FDCWD, "/tmp/tmpabc", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 3</tmp/tmpabc>',
        '10 1.200000 unlink("/tmp/tmpabc") = 0',
        '10 1.300000 openat(AT_FDCWD, "/dev/null", O_WRONLY|O_CLOEXEC) = 3</dev/null>',
        '10 1.400000 openat(AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY) = 3</proc/10/oom_score_adj>',
      ]),
    );
    expect(changes).toEqual([]);
  });
});
