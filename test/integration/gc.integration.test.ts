/** `gc` removes what a killed run left behind, and spares containers of runs still going. */
import { hostname } from 'node:os';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { DockerClient } from '../../src/runtime/docker.js';
import { LABEL } from '../../src/runtime/port.js';
import { CLI, engineAvailable } from './helpers.js';

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
});
