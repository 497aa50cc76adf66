import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  base62,
  canaryMatcher,
  checksummedToken,
  EXCERPT_MAX,
  makeCanaries,
  PARTIAL_MIN_CHARS,
  SEARCHED_BYTES_PER_RUN,
  secretPart,
  tokenChecksumValid,
  type Canary,
} from './canary.js';
import { base32, rot13 } from './reference-encodings.js';

/**
 * The exact-boundary assertions below (13 characters match, a base64 run that determines only 12
 * does not) hold for most random secrets but not all: a neighbouring byte can coincide with the
 * secret's next character by chance (about one run in twelve failed with fresh random canaries).
 * So these canaries come from a fixed seed (sha256 in counter mode); freshness is tested apart.
 */
function seeded(seed: string): (n: number) => Buffer {
  let counter = 0;
  return (n) => {
    const chunks: Buffer[] = [];
    for (let got = 0; got < n; got += 32) chunks.push(createHash('sha256').update(`${seed}:${counter++}`).digest());
    return Buffer.concat(chunks).subarray(0, n);
  };
}

const set = makeCanaries({ random: seeded('canary.test.ts'), everyVariable: true });
const secret = set.canaries.find((c) => c.name.endsWith('aws_secret_access_key'))!;
const github = set.canaries.find((c) => c.name === '~/.git-credentials github.com token')!;
const match = canaryMatcher(set.canaries);
const found = (text: string | Uint8Array) => match(text).map((hit) => [hit.canary.name, hit.encoding]);

/** Reads the SSH wire format (RFC 4251): big-endian uint32s and length-prefixed strings. */
function reader(buffer: Buffer, start: number) {
  let at = start;
  return {
    u32: () => {
      at += 4;
      return buffer.readUInt32BE(at - 4);
    },
    string: () => {
      const length = buffer.readUInt32BE(at);
      at += 4 + length;
      return buffer.subarray(at - length, at);
    },
    done: () => at === buffer.length,
  };
}

describe('canaries', () => {
  it('are fresh per run, planted in files and variables, and every value appears in what is planted', () => {
    const other = makeCanaries();
    expect(other.canaries.map((c) => c.value)).not.toEqual(set.canaries.map((c) => c.value));
    expect(set.files.map((f) => f.path)).toEqual([
      '.aws/config',
      '.aws/credentials',
      '.ssh/id_ed25519',
      '.ssh/id_ed25519.pub',
      '.git-credentials',
      '.npmrc',
      '.netrc',
      '.pypirc',
    ]);
    const planted = [...set.files.map((f) => f.content), ...set.env].join('\n');
    for (const canary of set.canaries) expect(planted).toContain(canary.value);
    expect(set.env.map((e) => e.split('=')[0])).toEqual([
      expect.stringMatching(/^(GITHUB_TOKEN|GH_TOKEN)$/),
      'NPM_TOKEN',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_DEFAULT_REGION',
      'TWINE_USERNAME',
      'TWINE_PASSWORD',
      'HF_TOKEN',
    ]);
  });

  it('set a different mix of variables from run to run, never none, each holding a canary', () => {
    const mixes = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const drawn = makeCanaries();
      const names = drawn.env.map((e) => e.split('=')[0]!);
      mixes.add(names.join(','));
      expect(names.some((n) => ['GITHUB_TOKEN', 'GH_TOKEN', 'NPM_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'TWINE_PASSWORD', 'HF_TOKEN'].includes(n))).toBe(true);
      const values = new Set(drawn.canaries.map((c) => c.value));
      for (const entry of drawn.env) {
        const [name, value] = [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)];
        if (!['AWS_DEFAULT_REGION', 'TWINE_USERNAME'].includes(name)) expect(values, name).toContain(value);
      }
      // The AWS pair comes together, and is the pair in ~/.aws/credentials.
      expect(names.includes('AWS_ACCESS_KEY_ID')).toBe(names.includes('AWS_SECRET_ACCESS_KEY'));
      const credentials = drawn.files.find((f) => f.path === '.aws/credentials')!.content;
      for (const entry of drawn.env.filter((e) => e.startsWith('AWS_ACCESS_KEY_ID=') || e.startsWith('AWS_SECRET_ACCESS_KEY='))) {
        expect(credentials).toContain(`${entry.split('=')[0]!.toLowerCase()} = ${entry.slice(entry.indexOf('=') + 1)}`);
      }
    }
    // 5 independent choices (and GITHUB_TOKEN or GH_TOKEN): far more than a handful of mixes.
    expect(mixes.size).toBeGreaterThan(15);
  });

  it('hold GitHub-format tokens whose CRC32/base62 checksum is valid, as real ones are', () => {
    // Checked against an independent implementation (Python's binascii.crc32 and GitHub's base62 alphabet).
    expect(tokenChecksumValid('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')).toBe(true);
    expect(tokenChecksumValid('ghp_7VJHI15ipoQtk604ZIg267GeSSQspb0y3WBB')).toBe(false);
    expect(tokenChecksumValid('ghp_8VJHI15ipoQtk604ZIg267GeSSQspb0y3WBA')).toBe(false);
    expect(base62(0, 6)).toBe('000000');
    expect(base62(62 ** 2 + 61, 3)).toBe('10z');
    for (let i = 0; i < 50; i++) {
      const drawn = makeCanaries();
      for (const name of ['~/.git-credentials github.com token', '~/.npmrc _authToken']) {
        const token = drawn.canaries.find((c) => c.name === name)!.value;
        expect(token).toMatch(/^(ghp|npm)_[0-9A-Za-z]{36}$/);
        expect(tokenChecksumValid(token), token).toBe(true);
      }
    }
    expect(tokenChecksumValid(checksummedToken('ghp_', randomBytes))).toBe(true);
  });

  it('hold an AWS access key id with its secret, in ~/.aws/credentials', () => {
    const credentials = set.files.find((f) => f.path === '.aws/credentials')!.content;
    const id = set.canaries.find((c) => c.name === '~/.aws/credentials aws_access_key_id')!.value;
    expect(id).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(credentials).toBe(`[default]\naws_access_key_id = ${id}\naws_secret_access_key = ${secret.value}\n`);
    expect(secret.value).toMatch(/^[A-Za-z0-9+/]{40}$/);
  });

  it('hold a real OpenSSH Ed25519 key: its private half signs what its public half verifies, and the secret is its seed', () => {
    const text = set.files.find((f) => f.path === '.ssh/id_ed25519')!.content;
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('-----BEGIN OPENSSH PRIVATE KEY-----');
    expect(lines.at(-1)).toBe('-----END OPENSSH PRIVATE KEY-----');
    expect(lines.slice(1, -2).every((line) => line.length === 70)).toBe(true);
    const blob = Buffer.from(lines.slice(1, -1).join(''), 'base64');
    expect(blob.subarray(0, 15).toString('latin1')).toBe('openssh-key-v1\0');
    // The format: cipher, kdf, kdf options, key count, public key, private section.
    const outer = reader(blob, 15);
    expect([outer.string().toString(), outer.string().toString(), outer.string().length, outer.u32()]).toEqual(['none', 'none', 0, 1]);
    const publicBlob = outer.string();
    const priv = outer.string();
    expect(outer.done()).toBe(true);
    expect(priv.length % 8).toBe(0);
    // Two equal check words, then the key type, the public key, seed and public key, the comment.
    const inner = reader(priv, 0);
    expect(inner.u32()).toBe(inner.u32());
    expect(inner.string().toString()).toBe('ssh-ed25519');
    const pub = inner.string();
    const both = inner.string();
    expect(inner.string().toString()).toMatch(/^user@/);
    expect(Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), pub])).toEqual(publicBlob);
    expect(both.subarray(32)).toEqual(pub);
    const key = createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), both.subarray(0, 32)]),
      format: 'der',
      type: 'pkcs8',
    });
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pub.toString('base64url') }, format: 'jwk' });
    expect(verify(null, Buffer.from('hello'), publicKey, sign(null, Buffer.from('hello'), key))).toBe(true);
    // The .pub file is the same public key.
    expect(set.files.find((f) => f.path === '.ssh/id_ed25519.pub')!.content).toMatch(
      new RegExp(`^ssh-ed25519 ${publicBlob.toString('base64').replace(/[+/]/g, '\\$&')} user@`),
    );
    // The canary is the part of the base64 that the seed alone decides, and nothing public.
    const ssh = set.canaries.find((c) => c.name === '~/.ssh/id_ed25519')!;
    expect(ssh.value.length).toBe(42);
    expect(text).toContain(ssh.value);
    expect(publicBlob.toString('base64')).not.toContain(ssh.value.slice(0, PARTIAL_MIN_CHARS));
    expect(found(Buffer.from(text).toString('base64'))).toContainEqual(['~/.ssh/id_ed25519', 'base64']);
  });

  it('were written weeks to months ago, not when the run started, and not all at once', () => {
    const now = Date.UTC(2026, 11, 8);
    const drawn = makeCanaries({ now });
    const days = drawn.files.map((f) => (now - f.mtime) / 86_400_000);
    for (const d of days) {
      expect(d).toBeGreaterThanOrEqual(20);
      expect(d).toBeLessThan(700);
    }
    expect(new Set(drawn.files.map((f) => f.mtime)).size).toBeGreaterThan(5);
    // Whole seconds, as a filesystem shows them after a tar extraction.
    for (const f of drawn.files) expect(f.mtime % 1000).toBe(0);
  });

  it('are found plain, hex (either case, split across DNS labels), percent-encoded and base64 at every offset', () => {
    const hex = Buffer.from(secret.value).toString('hex');
    expect(found(`GET /x?k=${secret.value}`)).toEqual([[secret.name, 'plain']]);
    expect(found(`${hex.slice(0, 50)}.${hex.slice(50).toUpperCase()}.exfil.invalid`)).toEqual([[secret.name, 'hex']]);
    expect(found(`/collect/${encodeURIComponent(`k=${secret.value}`)}`)).toEqual([[secret.name, secret.value.match(/[+/]/) ? 'url' : 'plain']]);
    for (const prefix of ['', 'a', 'ab', 'abc', 'key=']) {
      const b64 = Buffer.from(prefix + secret.value + '\n').toString('base64');
      expect(found(`/u/${b64}`)).toEqual([[secret.name, 'base64']]);
      const urlSafe = b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      // base64url when the characters the secret alone decides hold a `+` or `/`; else they are base64's too.
      const decided = b64.slice(Math.ceil((prefix.length * 8) / 6), Math.floor(((prefix.length + secret.value.length) * 8) / 6));
      expect(found(`/u/${urlSafe}`)).toEqual([[secret.name, /[+/]/.test(decided) ? 'base64url' : 'base64']]);
    }
  });

  it('are found in base32 at every byte offset, either case, padded or not, split across labels', () => {
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd', 'key=']) {
      const b32 = base32(Buffer.from(prefix + secret.value));
      expect(found(b32)).toEqual([[secret.name, 'base32']]);
      expect(found(b32.replace(/=+$/, '').toLowerCase())).toEqual([[secret.name, 'base32']]);
      const lower = b32.toLowerCase();
      expect(found(`${lower.slice(0, 30)}.${lower.slice(30)}.b32.exfil.invalid`)).toEqual([[secret.name, 'base32']]);
    }
  });

  it('are found reversed, rot13 and case-changed', () => {
    const value = github.value;
    expect(found(`x=${[...value].reverse().join('')}`)).toEqual([[github.name, 'reversed']]);
    expect(found(`x=${rot13(value)}`)).toEqual([[github.name, 'rot13']]);
    expect(found(value.toUpperCase())).toEqual([[github.name, 'case-changed']]);
    expect(found(value.toLowerCase())).toEqual([[github.name, 'case-changed']]);
    // Exact wins over case-changed when both match.
    expect(found(value)).toEqual([[github.name, 'plain']]);
  });

  it('finds a whole planted file sent out, and names every secret in it', () => {
    const creds = set.files.find((f) => f.path === '.aws/credentials')!.content;
    expect(found(Buffer.from(creds).toString('hex')).sort()).toEqual([
      ['~/.aws/credentials aws_access_key_id', 'hex'],
      ['~/.aws/credentials aws_secret_access_key', 'hex'],
    ]);
    for (const [path, name] of [
      ['.git-credentials', '~/.git-credentials github.com token'],
      ['.npmrc', '~/.npmrc _authToken'],
      ['.netrc', '~/.netrc password'],
    ] as const) {
      expect(found(set.files.find((f) => f.path === path)!.content)).toEqual([[name, 'plain']]);
    }
    // Every variable the run sets, sent as the environment is (`env` output, base64-encoded).
    expect(
      found(Buffer.from(set.env.join('\n')).toString('base64'))
        .map(([name]) => name)
        .sort(),
    ).toEqual(
      [
        '~/.aws/credentials aws_access_key_id',
        '~/.aws/credentials aws_secret_access_key',
        '~/.git-credentials github.com token',
        '~/.npmrc _authToken',
        '~/.pypirc password',
        'env HF_TOKEN',
      ].sort(),
    );
  });

  it(`finds a run of ${PARTIAL_MIN_CHARS} characters of a secret, in any encoding, and counts what it saw`, () => {
    const part = secretPart(github);
    const middle = part.slice(6, 6 + 24);
    expect(match(`Host: ${middle}.exfil.invalid`)).toEqual([
      expect.objectContaining({ canary: github, encoding: 'plain', chars: 24, of: part.length, view: 'as sent', offset: 6 }),
    ]);
    const least = part.slice(3, 3 + PARTIAL_MIN_CHARS);
    expect(found(`a ${least} b`)).toEqual([[github.name, 'plain']]);
    // A base64 character straddles two bytes: 13 characters at this offset determine only 12 whole
    // ones, 15 determine 13 at any offset.
    expect(found(Buffer.from(`xy${least}`).toString('base64'))).toEqual([]);
    for (const prefix of ['', 'x', 'xy']) expect(found(Buffer.from(`${prefix}${part.slice(3, 3 + 15)}`).toString('base64'))).toEqual([[github.name, 'base64']]);
    // Hex of 13 whole characters; one hex digit fewer leaves 12 whole ones and no match.
    const hex = Buffer.from(least).toString('hex');
    expect(found(hex)).toEqual([[github.name, 'hex']]);
    expect(found(hex.slice(1))).toEqual([]);
    // The whole secret is found whole, with its public prefix or without.
    expect(match(github.value)[0]).toMatchObject({ chars: part.length, of: part.length });
    expect(match(part)[0]).toMatchObject({ chars: part.length, of: part.length });
  });

  it('does not match a run shorter than the minimum, a public prefix, or unrelated text', () => {
    expect(found(secretPart(secret).slice(0, PARTIAL_MIN_CHARS - 1))).toEqual([]);
    expect(found(secretPart(github).slice(5, 5 + PARTIAL_MIN_CHARS - 1))).toEqual([]);
    // `pypi-AgEIcHlwaS5vcmc` is every PyPI token's, not this run's secret.
    expect(found('password = pypi-AgEIcHlwaS5vcmc')).toEqual([]);
    expect(found('files.pythonhosted.org GET /simple/requests/')).toEqual([]);
  });

  it('names where in the bytes the match is, with a short excerpt, however long the input', () => {
    const filler = Buffer.alloc(1 << 20, 'x');
    const payload = Buffer.concat([filler, Buffer.from(secret.value), filler]);
    const [hit] = match(payload);
    expect(hit).toMatchObject({ encoding: 'plain', offset: filler.length, chars: 40, of: 40 });
    expect(hit!.excerpt).toContain(secret.value);
    expect(hit!.excerpt.length).toBeLessThanOrEqual(EXCERPT_MAX);
  });

  it('a matcher without canaries matches nothing', () => {
    expect(canaryMatcher([])('anything at all')).toEqual([]);
  });

  it('keeps short test canaries whole: a secret shorter than the minimum must match in full', () => {
    const short: Canary = { name: 'short', value: 'Zq9xK2' };
    const m = canaryMatcher([short]);
    expect(m('..Zq9xK2..').map((h) => h.encoding)).toEqual(['plain']);
    expect(m('..Zq9xK..')).toEqual([]);
  });

  it(`has a partial length (${PARTIAL_MIN_CHARS}) that keeps chance matches under 1e-6 per run, and is the least that does`, () => {
    // canary.ts's arithmetic, from the constants and this set's secrets.
    const signaturesPerSecret = 16;
    const views = 4;
    const minAlphabetBits = 5; // the AWS key id's base32 alphabet
    const expected = (l: number) => {
      const runs = signaturesPerSecret * set.canaries.reduce((sum, c) => sum + Math.max(0, secretPart(c).length - l + 1), 0);
      return SEARCHED_BYTES_PER_RUN * views * runs * 2 ** (-minAlphabetBits * l);
    };
    expect(expected(PARTIAL_MIN_CHARS)).toBeLessThan(1e-6);
    expect(expected(PARTIAL_MIN_CHARS - 1)).toBeGreaterThan(1e-6);
    expect(set.canaries.map((c) => secretPart(c).length)).toEqual([40, 16, 42, 20, 48, 36, 36, 34]);
  });

  it('finds nothing in 4 MiB of random bytes, and a secret planted in them', () => {
    const noise = randomBytes(4 << 20);
    expect(match(noise)).toEqual([]);
    const planted = Buffer.from(noise);
    Buffer.from(base32(Buffer.from(github.value)).toLowerCase()).copy(planted, 3_000_001);
    expect(found(planted)).toEqual([[github.name, 'base32']]);
  });
});
