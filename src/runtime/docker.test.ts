/** The Docker adapter's pure parts: reading the sandbox's framed logs with a byte bound, removal that waits, the seccomp option. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import tarStream from 'tar-stream';
import { demuxTail, DockerClient, DockerContainer, OUTPUT_MAX_BYTES, removeFully, seccompOption } from './docker.js';
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

  it('gives the container the host name asked for, and none (the engine default) otherwise', async () => {
    const { docker, created } = client('Docker 20.10.24+dfsg1');
    await docker.create({ ...spec, hostname: 'user-ThinkPad-T14-Gen-3' });
    await docker.create(spec);
    expect(created.map((c) => (c as unknown as { Hostname?: string }).Hostname)).toEqual(['user-ThinkPad-T14-Gen-3', undefined]);
  });
});

describe('DockerContainer.putFiles', () => {
  /** The entries of the archive the engine was handed: name, type, owner, mode and mtime. */
  async function archived(files: Parameters<DockerContainer['putFiles']>[0], at: string) {
    const entries: Array<[string, string, number, number, number]> = [];
    let done: Promise<void> = Promise.resolve();
    const container = {
      putArchive: (stream: NodeJS.ReadableStream) => {
        const extract = tarStream.extract();
        extract.on('entry', (header, body, next) => {
          entries.push([header.name, header.type ?? 'file', header.uid ?? -1, header.mode ?? -1, header.mtime!.getTime()]);
          body.resume();
          body.on('end', next);
        });
        done = new Promise((resolve) => extract.on('finish', resolve));
        stream.pipe(extract);
        return Promise.resolve();
      },
    };
    await new DockerContainer({} as never, container as never, 'x').putFiles(files, at);
    await done;
    return entries;
  }

  it("writes each file's mtime, and gives the directories made for them their newest file's", async () => {
    const day = 86_400_000;
    const t = Date.UTC(2026, 9, 1, 12, 0, 0);
    const before = Date.now();
    const entries = await archived(
      [
        { path: '/home/user/.aws/config', content: 'c', mode: 0o600, uid: 1000, gid: 1000, mtime: t - 90 * day },
        { path: '/home/user/.aws/credentials', content: 'k', mode: 0o600, uid: 1000, gid: 1000, mtime: t - 30 * day },
        { path: '/home/user/.netrc', content: 'n', mode: 0o600, uid: 1000, gid: 1000, mtime: t - 60 * day },
        { path: '/home/user/plain', content: 'p', mode: 0o644 },
      ],
      '/home/user',
    );
    expect(entries.slice(0, 4)).toEqual([
      ['.aws', 'directory', 1000, 0o700, t - 30 * day],
      ['.aws/config', 'file', 1000, 0o600, t - 90 * day],
      ['.aws/credentials', 'file', 1000, 0o600, t - 30 * day],
      ['.netrc', 'file', 1000, 0o600, t - 60 * day],
    ]);
    // Without a time, the time of writing.
    expect(entries[4]!.slice(0, 4)).toEqual(['plain', 'file', 0, 0o644]);
    expect(entries[4]![4]).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });
});
