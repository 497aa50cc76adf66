import { describe, expect, it } from 'vitest';
import { wheelSupported, wheelTags, type LinuxCPython } from './wheel-tags.js';

const bookworm: LinuxCPython = { python: [3, 11], machine: 'x86_64', glibc: [2, 36] };

describe('wheelTags', () => {
  it('splits compressed tag sets, with and without a build tag', () => {
    expect(wheelTags('six-1.16.0-py2.py3-none-any.whl')).toEqual({ python: ['py2', 'py3'], abi: ['none'], platform: ['any'] });
    expect(wheelTags('pkg-1.0-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl')).toEqual({
      python: ['cp311'],
      abi: ['cp311'],
      platform: ['manylinux_2_17_x86_64', 'manylinux2014_x86_64'],
    });
    expect(wheelTags('pkg-1.0.tar.gz')).toBeNull();
    expect(wheelTags('pkg-1.0-any.whl')).toBeNull();
  });
});

describe('wheelSupported on CPython 3.11, glibc 2.36, x86_64', () => {
  const cases: Array<[string, boolean]> = [
    ['a-1.0-py3-none-any.whl', true],
    ['a-1.0-py2.py3-none-any.whl', true],
    ['a-1.0-py2-none-any.whl', false],
    ['a-1.0-py311-none-any.whl', true],
    ['a-1.0-py38-none-any.whl', true],
    ['a-1.0-py312-none-any.whl', false],
    ['a-1.0-cp311-none-any.whl', true],
    ['a-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', true],
    ['a-1.0-cp311-cp311-manylinux_2_36_x86_64.whl', true],
    ['a-1.0-cp311-cp311-manylinux_2_38_x86_64.whl', false],
    ['a-1.0-cp311-cp311-manylinux1_x86_64.whl', true],
    ['a-1.0-cp311-cp311-linux_x86_64.whl', true],
    ['a-1.0-cp311-cp311-musllinux_1_1_x86_64.whl', false],
    ['a-1.0-cp311-cp311-manylinux_2_17_aarch64.whl', false],
    ['a-1.0-cp311-cp311-win_amd64.whl', false],
    ['a-1.0-cp311-cp311-macosx_11_0_x86_64.whl', false],
    ['a-1.0-cp310-cp310-manylinux_2_17_x86_64.whl', false],
    ['a-1.0-cp312-cp312-manylinux_2_17_x86_64.whl', false],
    ['a-1.0-cp37-abi3-manylinux_2_17_x86_64.whl', true],
    ['a-1.0-cp311-abi3-manylinux_2_17_x86_64.whl', true],
    ['a-1.0-cp312-abi3-manylinux_2_17_x86_64.whl', false],
    ['a-1.0-cp37-abi3-any.whl', false],
    ['a-1.0-cp311-cp311-any.whl', false],
    ['a-1.0-pp39-pypy39_pp73-manylinux_2_17_x86_64.whl', false],
    ['a-1.0-py3-none-manylinux_2_17_x86_64.whl', true],
  ];
  for (const [filename, supported] of cases) {
    it(`${filename}: ${supported ? 'installable' : 'not installable'}`, () => {
      expect(wheelSupported(filename, bookworm)).toBe(supported);
    });
  }

  it('follows the machine: an aarch64 sandbox takes aarch64 wheels only', () => {
    const arm = { ...bookworm, machine: 'aarch64' };
    expect(wheelSupported('a-1.0-cp311-cp311-manylinux_2_17_aarch64.whl', arm)).toBe(true);
    expect(wheelSupported('a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl', arm)).toBe(false);
  });
});
