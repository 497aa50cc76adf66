import { describe, expect, it } from 'vitest';
import { finding } from '../core/finding.js';
import { collapseConflicts } from './conflicts.js';

const claimed = (path: string, claimedBy: string[], extra: Record<string, unknown> = {}) =>
  finding('static.unrecorded-file', 'high', `${path} is claimed by several RECORDs: ${claimedBy.join(', ')}`, { path, claimedBy, ...extra }, null);
const mismatch = (path: string, distribution: string, extra: Record<string, unknown> = {}) =>
  finding(
    'integrity.installed-mismatch',
    'high',
    `${path} of ${distribution} differs from the wheel`,
    { distribution, wheel: `${distribution}-1.0-py3-none-any.whl`, path, kind: 'different', expected: 'a', actual: 'b', ...extra },
    distribution,
  );

describe('collapseConflicts', () => {
  it('says once that two distributions install the same files, with the files, folding in the overwrites it explains', () => {
    const findings = [
      claimed('cv2/__init__.py', ['opencv-python-headless', 'opencv-python']),
      claimed('cv2/data/x.xml', ['opencv-python', 'opencv-python-headless']),
      mismatch('cv2/__init__.py', 'opencv-python'),
      mismatch('cv2/data/x.xml', 'opencv-python'),
    ];
    expect(collapseConflicts(findings)).toEqual([
      {
        rule: 'integrity.file-conflict',
        severity: 'high',
        package: null,
        message: 'opencv-python and opencv-python-headless install the same 2 files (cv2/__init__.py, …): whichever pip installed last won; lock one of them',
        evidence: { distributions: ['opencv-python', 'opencv-python-headless'], files: 2, paths: ['cv2/__init__.py', 'cv2/data/x.xml'], overwritten: 2 },
      },
    ]);
  });

  it('keeps what the overlap does not explain: a file a process wrote, a mismatch of another kind, of another file or distribution', () => {
    const kept = [
      claimed('evil.py', ['a', 'b'], { writerPid: 42 }),
      mismatch('shared.py', 'a', { writerPid: 42, writerArgv: 'python -c ...' }),
      mismatch('shared.py', 'a', { kind: 'missing' }),
      mismatch('own.py', 'a'),
      mismatch('shared.py', 'c'),
    ];
    const result = collapseConflicts([claimed('shared.py', ['a', 'b']), ...kept]);
    expect(result.slice(0, kept.length)).toEqual(kept);
    expect(result.slice(kept.length)).toEqual([
      expect.objectContaining({ rule: 'integrity.file-conflict', evidence: { distributions: ['a', 'b'], files: 1, paths: ['shared.py'], overwritten: 0 } }),
    ]);
  });

  it('leaves findings alone when no file is claimed twice', () => {
    const findings = [mismatch('x.py', 'a'), finding('static.unrecorded-file', 'high', 'x', { path: 'y.py', claimedBy: [] }, 'a')];
    expect(collapseConflicts(findings)).toBe(findings);
  });
});
