import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canaryMatcher, EXCERPT_MAX, makeCanaries, PARTIAL_MIN_CHARS, SEARCHED_BYTES_PER_RUN, secretPart, type Canary } from './canary.js';
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

const set = makeCanaries(seeded('canary.test.ts'));
const secret = set.canaries.find((c) => c.name.endsWith('aws_secret_access_key'))!;
const github = set.canaries.find((c) => c.name === 'env GITHUB_TOKEN')!;
const match = canaryMatcher(set.canaries);
const found = (text: string | Uint8Array) => match(text).map((hit) => [hit.canary.name, hit.encoding]);

describe('canaries', () => {
  it('are fresh per run, planted in files and variables, and every value appears in what is planted', () => {
    const other = makeCanaries();
    expect(other.canaries.map((c) => c.value)).not.toEqual(set.canaries.map((c) => c.value));
    expect(set.files.map((f) => f.path)).toEqual(['.aws/credentials', '.ssh/id_rsa', '.netrc', '.pypirc']);
    const planted = [...set.files.map((f) => f.content), ...set.env].join('\n');
    for (const canary of set.canaries) expect(planted).toContain(canary.value);
    expect(set.env.map((e) => e.split('=')[0])).toEqual(['GITHUB_TOKEN', 'NPM_TOKEN', 'AWS_SECRET_ACCESS_KEY']);
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
    const creds = set.files[0]!.content;
    expect(found(Buffer.from(creds).toString('hex')).sort()).toEqual([
      ['~/.aws/credentials aws_access_key_id', 'hex'],
      ['~/.aws/credentials aws_secret_access_key', 'hex'],
    ]);
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
    expect(set.canaries.map((c) => secretPart(c).length)).toEqual([40, 16, 64, 32, 48, 36, 36, 40]);
  });

  it('finds nothing in 4 MiB of random bytes, and a secret planted in them', () => {
    const noise = randomBytes(4 << 20);
    expect(match(noise)).toEqual([]);
    const planted = Buffer.from(noise);
    Buffer.from(base32(Buffer.from(github.value)).toLowerCase()).copy(planted, 3_000_001);
    expect(found(planted)).toEqual([[github.name, 'base32']]);
  });
});
