/**
 * Bytecode for the exported tree, made on the host from the verified sources. No `.pyc` from the
 * sandbox is ever exported: a wheel can ship `__pycache__/mod.cpython-311.pyc` beside a `mod.py`
 * that does not compile, so pip's (quiet) compile step fails and leaves the shipped bytecode, whose
 * code nobody reviewed, to run at import. Extraction leaves every `__pycache__` out; this compiles
 * each `.py` with the host's Python 3.11 (`-I -S`: nothing from the tree is imported; `compile()`
 * runs no code) into checked-hash `.pyc` files, which Python re-validates against the source at
 * every import. A source that does not compile is reported: it is not what it claims to be.
 */
import path from 'node:path';
import { execa } from 'execa';
import type { FileDigest } from './sync-fs.js';

export interface CompileResult {
  compiled: number;
  failures: Array<{ path: string; error: string }>;
  /** Each `.pyc` written, by its path relative to the tree (posix), hashed as it was written: the manifest need not read it back. */
  digests: Map<string, FileDigest>;
  /** Why nothing was compiled (no Python 3.11 on the host), or null. */
  skipped: string | null;
}

export const PYTHON_CANDIDATES = ['python3.11', 'python3'];
const COMPILE_TIMEOUT_MS = 600_000;

// Walks the tree without following symlinks and compiles every regular `.py` file in a pool of
// worker processes; prints one JSON object. A worker that dies fails the whole tree (fail closed).
const COMPILE_SCRIPT = String.raw`
import concurrent.futures, hashlib, importlib.util, json, os, py_compile, sys
root = sys.argv[1]
def one(rel):
    src = os.path.join(root, rel)
    try:
        cfile = importlib.util.cache_from_source(src)
        py_compile.compile(src, cfile=cfile, dfile=rel, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        with open(cfile, "rb") as f:
            data = f.read()
        return (None, os.path.relpath(cfile, root), hashlib.sha256(data).hexdigest(), len(data))
    except BaseException as e:
        text = str(getattr(e, "exc_value", None) or e)
        return (rel, (type(getattr(e, "exc_value", None) or e).__name__ + ": " + text)[:300])
files = []
for top, dirs, names in os.walk(root):
    dirs.sort()
    for name in sorted(names):
        full = os.path.join(top, name)
        if name.endswith(".py") and not os.path.islink(full) and os.path.isfile(full):
            files.append(os.path.relpath(full, root))
failures = []
# Chunks, not a future per file: per-file round trips to the workers cost more than small compiles.
with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
    try:
        results = list(pool.map(one, files, chunksize=max(1, len(files) // (8 * (os.cpu_count() or 1)))))
    except BaseException as e:
        results = [(".", "the compiler crashed: " + type(e).__name__)]
    failures = [{"path": r[0], "error": r[1]} for r in results if r[0] is not None]
failures.sort(key=lambda f: f["path"])
digests = [[r[1], r[2], r[3]] for r in results if r[0] is None]
json.dump({"compiled": len(files) - len(failures), "failures": failures[:1000], "digests": digests}, sys.stdout)
`;

let found: Promise<string | null> | null = null;

/** The host's Python 3.11, the target's version (bytecode is version-specific), or null. */
export function hostPython(): Promise<string | null> {
  found ??= (async () => {
    for (const candidate of PYTHON_CANDIDATES) {
      // The interpreter itself, not a launcher in front of it (a pyenv shim costs 0.2 s per start).
      const probe = await execa(candidate, ['-I', '-S', '-c', 'import sys; print(sys.version_info[:2] == (3, 11)); print(sys.executable)'], { reject: false });
      const [matches, executable] = probe.stdout.split('\n');
      if (probe.exitCode === 0 && matches === 'True') return executable && path.isAbsolute(executable) ? executable : candidate;
    }
    return null;
  })();
  return found;
}

export async function compileTree(dir: string, signal?: AbortSignal): Promise<CompileResult> {
  const python = await hostPython();
  if (python === null) return { compiled: 0, failures: [], digests: new Map(), skipped: `no Python 3.11 on the host (tried ${PYTHON_CANDIDATES.join(', ')})` };
  const run = await execa(python, ['-I', '-S', '-c', COMPILE_SCRIPT, dir], {
    reject: false,
    timeout: COMPILE_TIMEOUT_MS,
    maxBuffer: 256 * 1024 * 1024,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  signal?.throwIfAborted();
  try {
    if (run.exitCode !== 0) throw new Error(run.timedOut ? 'timed out' : `exit ${run.exitCode}: ${run.stderr.slice(-300)}`);
    const parsed = JSON.parse(run.stdout) as { compiled: number; failures: CompileResult['failures']; digests: Array<[string, string, number]> };
    const digests = new Map(parsed.digests.map(([rel, sha256, size]) => [rel, { sha256, size }]));
    return { compiled: parsed.compiled, failures: parsed.failures, digests, skipped: null };
  } catch (error: unknown) {
    // Fail closed: a tree we could not compile is not one we vouch for.
    return {
      compiled: 0,
      failures: [{ path: '.', error: `compiling the tree failed: ${error instanceof Error ? error.message : String(error)}` }],
      digests: new Map(),
      skipped: null,
    };
  }
}
