import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { STDLIB_MODULE_NAMES } from './stdlib-names.js';

/** What this machine's python3.11 says, or null when there is none to ask. */
function pythonSays(): string[] | null {
  try {
    const out = execFileSync('python3.11', ['-I', '-S', '-c', 'import json, sys; print(json.dumps(sorted(sys.stdlib_module_names)))'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30_000,
    });
    return JSON.parse(out) as string[];
  } catch {
    return null;
  }
}

const PYTHON_NAMES = pythonSays();

describe('STDLIB_MODULE_NAMES', () => {
  it.runIf(PYTHON_NAMES !== null)("equals python3.11's sys.stdlib_module_names", () => {
    expect([...STDLIB_MODULE_NAMES].sort()).toEqual(PYTHON_NAMES);
  });

  it('holds the names the rules depend on and nothing merely like them', () => {
    for (const name of ['json', 'typing', 'asyncio', 'distutils', 'enum', 'dataclasses', 'argparse', 'os', 'site']) {
      expect(STDLIB_MODULE_NAMES.has(name), name).toBe(true);
    }
    for (const name of ['_distutils_hack', 'typing_extensions', 'jsonschema', 'test', 'sitecustomize', 'usercustomize', 'six']) {
      expect(STDLIB_MODULE_NAMES.has(name), name).toBe(false);
    }
  });
});
