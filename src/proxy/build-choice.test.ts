import { describe, expect, it } from 'vitest';
import { sandboxPython } from '../lock/wheel-tags.js';
import { newestUsableRelease } from './build-choice.js';
import type { PageFile } from './pages.js';

const target = sandboxPython('x64');
let n = 0;
const file = (filename: string, more: Partial<PageFile> = {}): PageFile => ({
  filename,
  sha256: (++n).toString(16).padStart(64, '0'),
  requiresPython: null,
  yanked: null,
  ...more,
});

describe('newestUsableRelease', () => {
  it('takes the newest final release by PEP 440, not by page order or string order', () => {
    const files = [file('wheel-0.9.0-py3-none-any.whl'), file('wheel-0.10.0-py3-none-any.whl'), file('wheel-0.8.0-py3-none-any.whl')];
    expect(newestUsableRelease('wheel', files, target, '3.11.2').map((f) => f.filename)).toEqual(['wheel-0.10.0-py3-none-any.whl']);
  });

  it('skips pre-releases, dev releases, yanked files and files whose Requires-Python excludes the sandbox', () => {
    const files = [
      file('setuptools-70.0.0-py3-none-any.whl'),
      file('setuptools-71.0.0rc1-py3-none-any.whl'),
      file('setuptools-71.0.0.dev3-py3-none-any.whl'),
      file('setuptools-72.0.0-py3-none-any.whl', { yanked: 'broken' }),
      file('setuptools-73.0.0-py3-none-any.whl', { requiresPython: '>=3.12' }),
      file('setuptools-74.0.0-py3-none-any.whl', { requiresPython: 'not a specifier' }),
    ];
    expect(newestUsableRelease('setuptools', files, target, '3.11.2').map((f) => f.filename)).toEqual(['setuptools-70.0.0-py3-none-any.whl']);
  });

  it("of the chosen release, every wheel this interpreter takes and not its sdist; a release with only other platforms' wheels is passed over", () => {
    const files = [
      file('cython-3.0.10.tar.gz'),
      file('cython-3.0.10-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl'),
      file('cython-3.0.10-py2.py3-none-any.whl'),
      file('cython-3.0.10-cp311-cp311-win_amd64.whl'),
      file('cython-3.0.11-cp311-cp311-win_amd64.whl'),
    ];
    expect(newestUsableRelease('cython', files, target, '3.11.2').map((f) => f.filename)).toEqual([
      'cython-3.0.10-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
      'cython-3.0.10-py2.py3-none-any.whl',
    ]);
  });

  it('falls back to the sdists of a release without a usable wheel, and is empty when nothing qualifies', () => {
    expect(newestUsableRelease('flit-core', [file('flit_core-3.9.0.tar.gz')], target, '3.11.2').map((f) => f.filename)).toEqual(['flit_core-3.9.0.tar.gz']);
    expect(newestUsableRelease('flit-core', [file('flit_core-4.0.0rc1.tar.gz')], target, '3.11.2')).toEqual([]);
  });
});
