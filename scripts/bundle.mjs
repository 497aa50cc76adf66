// The CLI as one ES module (dist/cli/main.mjs), which bin/sandbox-install.js runs: Node 20 then
// reads and compiles one file instead of resolving some 900 modules, which took about half a second
// of every run (measured with --cpu-prof: module resolution and loading, not our code).
// The bundle sits in dist/cli/ like the modules it is made of, so their `new URL('../../…',
// import.meta.url)` paths (images/, policies/, package.json, the report schema) still resolve.
// ssh2 (a native addon behind DOCKER_HOST=ssh://) stays a package loaded at run time.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli/index.js'],
  outfile: 'dist/cli/main.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['ssh2', 'cpu-features'],
  // Bundled CommonJS packages call require(): give the module one.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
