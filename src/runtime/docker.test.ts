/** The Docker adapter's pure parts: reading the sandbox's framed logs with a byte bound, removal that waits, the seccomp option. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { demuxTail, DockerClient, OUTPUT_MAX_BYTES, removeFully, seccompOption } from './docker.js';
import { SANDBOX_PROFILE } from './seccomp.js';

/** Logs as the engine frames them: stream byte (1 stdout, 2 stderr), three zeros, size BE, payload. */
function framed(...entries: Array<[1 | 2, string | Buffer]>): Buffer {
  return Buffer.concat(
    entries.flatMap(([stream, payload]) => {
      const body = Buffer.from(payload);
      const header = Buffer.alloc(8);
      header.writeUInt8(stream, 0);
      header.writeUInt32BE(body.length, 4);
      return [header, body];
    }),
  );
}

describe('demuxTail', () => {
  it('joins stdout and stderr in the order the engine sent them when they fit', () => {
    expect(demuxTail(framed([1, 'Collecting a\n'], [2, 'ERROR: boom\n'], [1, 'done\n']), 1024)).toBe('Collecting a\nERROR: boom\ndone\n');
  });

  it('keeps the last bytes from the first whole line in them, across entries', () => {
    const logs = framed([1, 'first line that is dropped\n'], [2, 'second\n'], [1, 'ERROR: the last one\n']);
    expect(demuxTail(logs, 'ERROR: the last one\n'.length + 5)).toBe('ERROR: the last one\n');
  });

  it('bounds one huge line without newlines to its last bytes, never starting inside a UTF-8 character', () => {
    // 16 KiB entries, as the engine splits a long line: 2 MiB of "é" (2 bytes each) and then an end.
    const huge = Buffer.from('é'.repeat(1024 ** 2));
    const entries: Array<[1, Buffer]> = [];
    for (let at = 0; at < huge.length; at += 16 * 1024) entries.push([1, huge.subarray(at, at + 16 * 1024)]);
    entries.push([1, Buffer.from('END')]);
    // An odd bound puts the cut inside a character.
    const text = demuxTail(framed(...entries), 1000);
    expect(text).toBe(`${'é'.repeat(498)}END`);
    expect(text).not.toContain('\ufffd');
  });

  it('returns at most OUTPUT_MAX_BYTES of a flood', () => {
    const line = `${'x'.repeat(99)}\n`;
    const text = demuxTail(framed([1, line.repeat(10_000)], [2, 'ERROR: last\n']), OUTPUT_MAX_BYTES);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(OUTPUT_MAX_BYTES);
    expect(Buffer.byteLength(text)).toBeGreaterThan(OUTPUT_MAX_BYTES - 100);
    expect(text.startsWith('x')).toBe(true);
    expect(text.endsWith(`${line}ERROR: last\n`)).toBe(true);
  });
});

describe('removeFully', () => {
  const engineError = (statusCode: number) => Object.assign(new Error(`HTTP ${statusCode}`), { statusCode });
  /** A container whose remove answers `removal`, and which inspect still finds `present` more times. */
  function container(removal: number | null, present: number) {
    const calls = { remove: 0, inspect: 0 };
    return {
      calls,
      id: 'c0ffee',
      remove: () => {
        calls.remove += 1;
        return removal === null ? Promise.resolve() : Promise.reject(engineError(removal));
      },
      inspect: () => {
        calls.inspect += 1;
        return calls.inspect <= present ? Promise.resolve({}) : Promise.reject(engineError(404));
      },
    };
  }

  it('returns once the engine removed it, or found it gone, without looking again', async () => {
    for (const removal of [null, 404, 304]) {
      const c = container(removal, 5);
      await removeFully(c as never);
      expect(c.calls).toEqual({ remove: 1, inspect: 0 });
    }
  });

  it('waits for a removal already in progress (409) to finish: the container is gone when it returns', async () => {
    const c = container(409, 2);
    await removeFully(c as never);
    expect(c.calls).toEqual({ remove: 1, inspect: 3 });
  });

  it('gives up on a removal in progress that never ends, and passes on any other engine error', async () => {
    await expect(removeFully(container(409, Number.POSITIVE_INFINITY) as never, 250)).rejects.toThrow('container c0ffee is still being removed after 0.25 s');
    await expect(removeFully(container(500, 0) as never)).rejects.toThrow('HTTP 500');
  });
});

describe('seccompOption', () => {
  const text = JSON.stringify(JSON.parse(readFileSync(SANDBOX_PROFILE, 'utf8')));

  it("gives Docker the profile's JSON text, as its CLI does after reading the file", () => {
    const option = seccompOption('docker', SANDBOX_PROFILE, text);
    expect(option.startsWith('seccomp={')).toBe(true);
    expect(JSON.parse(option.slice('seccomp='.length))).toMatchObject({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
    });
  });

  it("gives Podman's Docker-compatible API the file's path, which it opens itself", () => {
    expect(seccompOption('podman', SANDBOX_PROFILE, text)).toBe(`seccomp=${SANDBOX_PROFILE}`);
  });
});

describe('DockerClient.create with a seccomp profile', () => {
  /** A client whose engine says it is `engine` and records what it was asked to create. */
  function client(engine: string) {
    const created: Array<{ HostConfig: { SecurityOpt: string[] } }> = [];
    const docker = new DockerClient();
    let versions = 0;
    docker.version = () => {
      versions += 1;
      return Promise.resolve({ engine, api: '1.41' });
    };
    (docker as unknown as { docker: object }).docker = {
      createContainer: (options: (typeof created)[number]) => {
        created.push(options);
        return Promise.resolve({ id: 'c0ffee' });
      },
    };
    return { docker, created, versions: () => versions };
  }
  const spec = { name: 'x', image: 'i', labels: {}, networkMode: 'none', cmd: ['true'], capDrop: ['ALL'], securityOpt: ['no-new-privileges'] };

  it('sends Docker the JSON text and Podman the path, asking the engine once', async () => {
    for (const [engine, expected] of [
      ['Docker 20.10.24+dfsg1', /^seccomp=\{"defaultAction":"SCMP_ACT_ERRNO"/],
      ['Podman 4.3.1', new RegExp(`^seccomp=${SANDBOX_PROFILE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)],
    ] as const) {
      const { docker, created, versions } = client(engine);
      await docker.create({ ...spec, seccompProfile: SANDBOX_PROFILE });
      await docker.create({ ...spec, seccompProfile: SANDBOX_PROFILE });
      expect(created.map((c) => c.HostConfig.SecurityOpt[0])).toEqual(['no-new-privileges', 'no-new-privileges']);
      for (const c of created) expect(c.HostConfig.SecurityOpt[1]).toMatch(expected);
      expect(versions()).toBe(1);
    }
  });

  it('leaves SecurityOpt alone without a profile, and refuses to create a container when the profile cannot be read', async () => {
    const { docker, created } = client('Docker 20.10.24+dfsg1');
    await docker.create(spec);
    expect(created[0]!.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    await expect(docker.create({ ...spec, seccompProfile: '/nonexistent/sandbox.json' })).rejects.toMatchObject({ code: 'image.seccomp-profile' });
    expect(created).toHaveLength(1);
  });
});
