/** `gc` removes what a killed run left behind, and spares containers of runs still going. */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { DockerClient } from '../../src/runtime/docker.js';
import { LABEL } from '../../src/runtime/port.js';
import { RunRecordFile } from '../../src/core/run-record.js';
import { sdist } from '../fixtures/hostile.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { CLI, engineAvailable } from './helpers.js';

const list = (dir: string): Promise<string[]> => readdir(dir).catch(() => []);

describe.runIf(engineAvailable())('gc', () => {
  it('removes containers whose owning process is gone and keeps those of a live owner', async () => {
    const client = new DockerClient();
    const make = (name: string, owner: string) =>
      client.create({
        name,
        image: inject('image'),
        cmd: ['sleep', '300'],
        labels: { [LABEL.tool]: '1', [LABEL.session]: name, [LABEL.role]: 'sandbox', [LABEL.owner]: owner },
        networkMode: 'none',
        capDrop: ['ALL'],
        securityOpt: ['no-new-privileges'],
      });
    // A pid that cannot be alive (above pid_max), and this test's own pid, which is.
    const orphan = await make(`sandbox-install-gc-orphan-${process.pid}`, `${hostname()}:4194305`);
    const live = await make(`sandbox-install-gc-live-${process.pid}`, `${hostname()}:${process.pid}`);
    try {
      await orphan.start();
      await live.start();
      const result = await execa('node', [CLI, 'gc'], { reject: false });
      expect(result.exitCode).toBe(0);
      // Containers of other runs on the same engine (a concurrent suite) are live too: only these two count.
      expect(result.stdout).toMatch(/^removed \d+ container\(s\); \d+ belong to runs still going$/m);
      const left = (await client.listOurs()).map((c) => c.name);
      expect(left).toContain(live.name);
      expect(left).not.toContain(orphan.name);
    } finally {
      await live.remove();
      await orphan.remove();
    }
  });

  it('after a run killed with SIGKILL while pip runs, gc removes its containers and its temp dirs', async () => {
    const index = await buildFixtureIndex([sdist('slow-build-gc', 'import time\ntime.sleep(120)')]);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
    // The run's temp dir and state dir are this test's own: what it left is told apart from any other run's.
    const env = {
      PIP_CONFIG_FILE: '/dev/null',
      PIP_EXTRA_INDEX_URL: '',
      NO_COLOR: '1',
      TMPDIR: path.join(work, 'tmp'),
      XDG_STATE_HOME: path.join(work, 'state'),
    };
    await mkdir(env.TMPDIR);
    const runs = path.join(env.XDG_STATE_HOME, 'sandbox-install', 'runs');
    const client = new DockerClient();
    const child = execa(
      'node',
      [
        CLI,
        index.lockFile,
        '--index-url',
        index.indexUrl,
        '--output',
        path.join(work, 'site-packages'),
        '--report',
        path.join(work, 'report.json'),
        '--cache-dir',
        path.join(work, 'cache'),
        '--image',
        inject('image'),
      ],
      { reject: false, env, extendEnv: true },
    );
    const owner = `${hostname()}:${child.pid}`;
    const containers = async () => (await client.listOurs()).filter((c) => c.labels[LABEL.owner] === owner);
    try {
      // pip is building the sdist (it sleeps) once both containers run.
      const deadline = Date.now() + 120_000;
      while ((await containers()).filter((c) => c.state === 'running').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setTimeout(r, 2000));
      child.kill('SIGKILL');
      const killed = await child;
      expect(killed.signal).toBe('SIGKILL');

      // What the kill left: both containers, the proxy's temp dir, and the record naming it.
      const before = await containers();
      expect(before.map((c) => c.labels[LABEL.role]).sort()).toEqual(['monitor', 'sandbox']);
      const left = (await list(env.TMPDIR)).filter((name) => name.startsWith('sandbox-install-'));
      expect(left.map((name) => name.replace(/-[A-Za-z0-9]{6}$/, '-XXXXXX'))).toEqual(['sandbox-install-proxy-XXXXXX']);
      const records = await list(runs);
      expect(records).toHaveLength(1);
      const record = RunRecordFile.parse(JSON.parse(await readFile(path.join(runs, records[0]!), 'utf8')));
      expect(record).toMatchObject({ host: hostname(), pid: child.pid, paths: [path.join(env.TMPDIR, left[0]!)] });

      const gc = await execa('node', [CLI, 'gc'], { reject: false, env, extendEnv: true });
      expect(gc.exitCode, gc.stderr).toBe(0);
      expect(gc.stdout).toContain(`removed directory ${path.join(env.TMPDIR, left[0]!)}\n`);
      expect(gc.stdout).toMatch(/^removed 1 directory\(ies\) of 1 dead run\(s\); 0 run\(s\) still going keep theirs$/m);
      for (const container of before) expect(gc.stdout).toContain(`removed container ${container.name}\n`);
      expect(await containers()).toEqual([]);
      expect((await list(env.TMPDIR)).filter((name) => name.startsWith('sandbox-install-'))).toEqual([]);
      expect(await list(runs)).toEqual([]);
    } finally {
      await Promise.allSettled((await containers()).map((c) => client.removeContainer(c.id)));
      await rm(work, { recursive: true, force: true });
    }
  });
});
