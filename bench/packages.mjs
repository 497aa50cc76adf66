/**
 * The bench's own packages: many small wheels, a few large ones and a few pure-Python sdists, built
 * into real files by test/fixtures/make_dist.py and laid out as a PEP 503 index, with one
 * hash-pinned lock per size holding the first `size` packages. Nothing here needs the network.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const MAKE_DIST = fileURLToPath(new URL('../test/fixtures/make_dist.py', import.meta.url));
/** Debian's python3-setuptools-whl and python3-wheel-whl (scripts/ensure-test-deps.sh): what pip's build isolation fetches. */
const BUILD_WHEELS_DIR = '/usr/share/python-wheels';
/** A large wheel: a binary blob of this size plus many modules, like a scientific package. */
const LARGE_BLOB_BYTES = 24 * 1024 * 1024;

/** What the i-th package is: every 20th (from the 5th) an sdist, every 40th (from the 10th) a large wheel, the rest small wheels. */
export function kindOf(i) {
  if (i % 20 === 4) return 'sdist';
  if (i % 40 === 9) return 'large';
  return 'small';
}

function modules(pkg, count, lines) {
  const body = Array.from({ length: lines }, (_, n) => `def f${n}(x):\n    return x + ${n}\n`).join('\n');
  return Object.fromEntries(Array.from({ length: count }, (_, n) => [`${pkg}/m${n}.py`, `"""${pkg} module ${n}."""\n\n${body}`]));
}

function spec(i, blob) {
  const name = `bench-pkg-${String(i).padStart(3, '0')}`;
  const pkg = name.replaceAll('-', '_');
  const kind = kindOf(i);
  const init = { [`${pkg}/__init__.py`]: `VALUE = ${i}\n` };
  if (kind === 'sdist') {
    return {
      name,
      version: '1.0',
      kind: 'sdist',
      files: { 'setup.py': `from setuptools import setup\nsetup(name="${name}", version="1.0", packages=["${pkg}"])\n`, ...init, ...modules(pkg, 10, 20) },
    };
  }
  if (kind === 'large') {
    return { name, version: '1.0', kind: 'wheel', files: { ...init, ...modules(pkg, 800, 10) }, binaryFiles: { [`${pkg}/data.bin`]: blob } };
  }
  return { name, version: '1.0', kind: 'wheel', files: { ...init, ...modules(pkg, 20, 20) } };
}

/** The first `<prefix>*.whl` in the first of `dirs` that has one, or null. */
async function firstWheel(prefix, dirs) {
  for (const dir of dirs) {
    const name = (await readdir(dir).catch(() => [])).find((n) => n.startsWith(prefix) && n.endsWith('.whl'));
    if (name) return path.join(dir, name);
  }
  return null;
}

async function sha256File(file) {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/**
 * Build `count` packages into `<dir>/files`, their pages into `<dir>/simple`, and one lock per size
 * into `<dir>/lock-<size>.txt` (plus an empty lock). Returns the lock paths by size.
 */
export async function buildBenchIndex(dir, count, sizes) {
  const files = path.join(dir, 'files');
  await mkdir(files, { recursive: true });
  const blob = path.join(dir, 'blob.bin');
  const block = Buffer.alloc(1024 * 1024);
  const chunks = [];
  for (let n = 0; n < LARGE_BLOB_BYTES / block.length; n += 1) chunks.push(Buffer.from(randomFillSync(block)));
  await writeFile(blob, Buffer.concat(chunks));

  const specs = Array.from({ length: count }, (_, i) => spec(i, blob));
  const { stdout } = await execa('python3', ['-I', '-S', MAKE_DIST], { input: JSON.stringify({ outDir: files, packages: specs }), maxBuffer: 64 * 1024 ** 2 });
  const built = JSON.parse(stdout);

  // pip's build isolation fetches setuptools and wheel from the index. The host's Python bundles a
  // setuptools for ensurepip that both it and the sandbox's Debian Python build with (Debian's own
  // expects Debian's patched distutils); wheel comes from Debian's python3-wheel-whl.
  const { stdout: bundled } = await execa('python3', [
    '-I',
    '-S',
    '-c',
    'import ensurepip, os; print(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled"))',
  ]);
  for (const [prefix, dirs] of [
    ['setuptools-', [bundled.trim(), BUILD_WHEELS_DIR]],
    ['wheel-', [BUILD_WHEELS_DIR]],
  ]) {
    const found = await firstWheel(prefix, dirs);
    if (!found) throw new Error(`no ${prefix}*.whl in ${dirs.join(' or ')}: run scripts/ensure-test-deps.sh first (the sdists build with it)`);
    const filename = path.basename(found);
    await copyFile(found, path.join(files, filename));
    built.push({ name: prefix.slice(0, -1), filename, sha256: await sha256File(found) });
  }
  for (const file of built) {
    const project = file.name.toLowerCase().replace(/[-_.]+/g, '-');
    await mkdir(path.join(dir, 'simple', project), { recursive: true });
    await writeFile(
      path.join(dir, 'simple', project, 'index.html'),
      `<!DOCTYPE html><html><body>\n<a href="../../files/${file.filename}#sha256=${file.sha256}">${file.filename}</a>\n</body></html>\n`,
    );
  }

  const locks = { 0: path.join(dir, 'lock-0.txt') };
  await writeFile(locks[0], '# an empty lock: the fixed overhead\n');
  for (const size of sizes) {
    const lines = specs.slice(0, size).map((s) => `${s.name}==1.0 \\\n    --hash=sha256:${built.find((b) => b.name === s.name).sha256}\n`);
    locks[size] = path.join(dir, `lock-${size}.txt`);
    await writeFile(locks[size], `# bench lock: ${size} packages\n${lines.join('')}`);
  }
  const mix = (size) => ({
    small: specs.slice(0, size).filter((_, i) => kindOf(i) === 'small').length,
    large: specs.slice(0, size).filter((_, i) => kindOf(i) === 'large').length,
    sdist: specs.slice(0, size).filter((_, i) => kindOf(i) === 'sdist').length,
  });
  return { locks, mix };
}
