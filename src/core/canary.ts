/**
 * Canary secrets: fake credentials planted in every run (files in the sandbox user's home and
 * token-looking environment variables), each a fresh random value. Nothing legitimate ever sends
 * them anywhere, so one seen where data leaves (a DNS name, an HTTP request, a TCP stream, a
 * datagram, a proxy request path, the buffer of a traced send) is proof of exfiltration, whatever
 * encoding hid it.
 *
 * Encodings found, each of the secret's random part (the `AKIA`, `ghp_`, `pypi-…` prefixes that
 * every secret of its kind shares are left out):
 *
 *   plain         as is
 *   url           plain after percent-decoding (`%2B`, `%2F`, …)
 *   case-changed  upper- or lower-cased (or any mix): the secrets mix cases, so this changes them
 *   reversed      the characters in reverse order
 *   rot13         letters rotated by 13, digits and symbols kept
 *   hex           either case (`deadbeef`, `DEADBEEF`)
 *   base64        standard alphabet, at any byte offset, with or without padding
 *   base64url     URL-safe alphabet (`-_`), at any byte offset, without padding
 *   base32        RFC 4648 alphabet, either case, at any byte offset, with or without padding
 *
 * Each is searched in up to four views of the bytes: as sent, with DNS label separators (and a
 * presentation-format `\`) removed so a value split across labels joins up again, percent-decoded,
 * and both. A combination of two transforms (base64 of the reversed secret) is not searched.
 *
 * A partial match counts: any PARTIAL_MIN_CHARS consecutive characters of a secret, in any of the
 * encodings (a base64 or hex run counts the secret characters it wholly determines).
 *
 * Matching is linear in the input: every PARTIAL_MIN_CHARS-character window of every encoded
 * signature is indexed once (a Rabin–Karp hash into a bitset and a map), the input is hashed with
 * a rolling window over case-folded bytes, and only a window whose hash is indexed is compared and
 * extended byte by byte. A match skips the rest of its own span, so a stream that repeats a secret
 * costs no more than one that does not.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { SANDBOX_USER } from './layout.js';

export interface Canary {
  /** What it stands for, e.g. `~/.aws/credentials aws_secret_access_key`. */
  name: string;
  value: string;
  /** Leading characters every secret of its kind shares (`AKIA`, `ghp_`): public, so never matched on their own. Default 0. */
  publicPrefix?: number;
}

export interface CanaryFile {
  /** Relative to the home directory. */
  path: string;
  content: string;
  /** When it was last written (ms since the epoch): weeks or months ago, as a user's own credentials are. */
  mtime: number;
}

export interface CanarySet {
  canaries: Canary[];
  /** Written into the home directory, owned by the sandbox user, mode 0600 (dirs 0700). */
  files: CanaryFile[];
  /** `NAME=value` entries for the sandbox's environment: a different mix each run. */
  env: string[];
}

export type CanaryEncoding = 'plain' | 'url' | 'case-changed' | 'reversed' | 'rot13' | 'hex' | 'base64' | 'base64url' | 'base32';

/** Which view of the bytes held the match. */
export type CanaryView = 'as sent' | 'labels joined' | 'percent-decoded' | 'percent-decoded, labels joined';

export interface CanaryHit {
  canary: Canary;
  encoding: CanaryEncoding;
  /** Consecutive characters of the secret's random part that the match wholly determines. */
  chars: number;
  /** Characters in the secret's random part: `chars < of` is a partial match. */
  of: number;
  view: CanaryView;
  /** Byte offset of the match in that view. */
  offset: number;
  /** The match and a little context, one character per byte (latin-1), at most EXCERPT_MAX characters. */
  excerpt: string;
}

/**
 * The fewest consecutive characters of a secret that count as a leak of it.
 *
 * Chance matches must stay below 1e-6 per run. The worst case for chance is text that is the same
 * encoding of other random characters from the secret's own alphabet: one position then matches
 * one indexed run of L characters with probability |A|^-L, and |A| ≥ 32 (the AWS key id's base32
 * alphabet; the other secrets draw from 62 or 64 characters, 36 or 38 once case is folded). Per run:
 *
 *   positions  P ≤ SEARCHED_BYTES_PER_RUN (128 MiB) × 4 views                               = 2^29
 *   runs       N ≤ 16 signatures per secret (plain, case-changed, reversed, rot13, hex, base64 and
 *              base64url at 3 offsets, base32 at 5) × Σ(n − L + 1) over the random parts of the
 *              eight secrets a run can hold (40, 16, 42, 20, 48, 36, 36, 34 characters): 16 × 176
 *                                                                                    = 2,816 < 2^11.46
 *   expected   P × N × 32^-L = 2^(29 + 11.46 − 5L)
 *              L = 13: 2^-24.5 ≈ 4e-8, below 1e-6;  L = 12: 2^-19.5 ≈ 1.3e-6, above it.
 *
 * So 13 (canary.test.ts recomputes this from the constants). Uniformly random bytes match far more
 * rarely still (256^-13 per position and run).
 */
export const PARTIAL_MIN_CHARS = 13;

/**
 * The bound on bytes searched per run that PARTIAL_MIN_CHARS is computed for: the monitor's
 * capture budget (MONITOR_CAPTURE.runBytes, 32 MiB), the trace's send budget (MAX_SEND_PAYLOAD_BYTES,
 * 32 MiB), the text fields of at most 20,000 monitor events (a path of 2,048, a host of 255, a DNS
 * name of at most 1,020 presentation characters: under 64 MiB), and the proxy's request paths.
 * observe/exfil.ts stops at this bound and fails the run (monitor.tampered) past it.
 */
export const SEARCHED_BYTES_PER_RUN = 128 * 1024 ** 2;

/** Bytes of context kept on each side of a match in `excerpt`, and the most of the match itself. */
const EXCERPT_CONTEXT = 24;
const EXCERPT_MATCH = 160;
export const EXCERPT_MAX = EXCERPT_MATCH + 2 * EXCERPT_CONTEXT + 1;

const UPPER32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// AWS secret keys use the base64 alphabet: `/` and `+` make a percent-encoded copy differ from the plain one.
const B64 = `${ALNUM}+/`;

function draw(alphabet: string, length: number, random: (n: number) => Buffer): string {
  // 256 is a multiple of 32 and 64 (no bias); for 62 the bias is below 1/4, harmless for a canary.
  return [...random(length)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/** GitHub's base62 alphabet for token checksums: digits, then upper case, then lower case. */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `n` (a non-negative integer) in base62, left-padded with `0` to `width` characters. */
export function base62(n: number, width: number): string {
  let out = '';
  for (let rest = n; rest > 0; rest = Math.floor(rest / 62)) out = BASE62[rest % 62]! + out;
  return out.padStart(width, '0');
}

/**
 * A token in GitHub's format (`ghp_`, and npm's `npm_`, which copied it): 30 random base62
 * characters, then the CRC32 of those 30 in base62, 6 characters. Secret scanners (and a payload
 * that wants to know whether a token is real) check that checksum; a random 36 fails it.
 */
export function checksummedToken(prefix: string, random: (n: number) => Buffer): string {
  const body = draw(ALNUM, 30, random);
  return `${prefix}${body}${base62(crc32(Buffer.from(body, 'latin1')), 6)}`;
}

/** Whether a `ghp_`/`npm_`-style token's last 6 characters are the base62 CRC32 of the 30 before them. */
export function tokenChecksumValid(token: string): boolean {
  const match = /^[a-z]{3}_([0-9A-Za-z]{30})([0-9A-Za-z]{6})$/.exec(token);
  return match !== null && base62(crc32(Buffer.from(match[1]!, 'latin1')), 6) === match[2];
}

/** The PKCS#8 DER of an Ed25519 private key, without its 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An OpenSSH private key file: a real, unencrypted Ed25519 key pair from a 32-byte seed, as ssh-keygen writes it. */
export interface OpensshKey {
  /** The file's text. */
  text: string;
  /** The public key line (`ssh-ed25519 AAAA… comment`), as id_ed25519.pub would hold it. */
  publicLine: string;
  /** The characters of the file's base64 that the seed alone decides: the part of the key that is secret. */
  seedChars: string;
}

export function opensshEd25519(seed: Buffer, checkint: Buffer, comment: string): OpensshKey {
  const key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const pub = Buffer.from(String(createPublicKey(key).export({ format: 'jwk' }).x), 'base64url');
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const str = (b: Buffer | string) => {
    const bytes = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
    return Buffer.concat([u32(bytes.length), bytes]);
  };
  const pubBlob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  const beforeSeed = Buffer.concat([checkint.subarray(0, 4), checkint.subarray(0, 4), pubBlob, u32(64)]);
  let priv = Buffer.concat([beforeSeed, seed, pub, str(comment)]);
  const padding = Buffer.from(Array.from({ length: (8 - (priv.length % 8)) % 8 }, (_, i) => i + 1));
  priv = Buffer.concat([priv, padding]);
  const header = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), str('none'), str('none'), str(''), u32(1), str(pubBlob), u32(priv.length)]);
  const blob = Buffer.concat([header, priv]);
  const b64 = blob.toString('base64');
  const seedAt = header.length + beforeSeed.length;
  const lines = b64.match(/.{1,70}/g) ?? [];
  return {
    text: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    publicLine: `ssh-ed25519 ${pubBlob.toString('base64')} ${comment}`,
    seedChars: b64.slice(Math.ceil((seedAt * 8) / 6), Math.floor(((seedAt + 32) * 8) / 6)),
  };
}

const DAY_MS = 24 * 3600 * 1000;

/** A time `days` to `days + spread` days before `now`, at a random second. */
function daysAgo(now: number, days: number, spread: number, random: (n: number) => Buffer): number {
  const r = random(4).readUInt32BE(0);
  return Math.floor((now - days * DAY_MS - (r % (spread * 86_400)) * 1000) / 1000) * 1000;
}

/** GitHub-style logins for the planted credentials (a `.git-credentials` line, an SSH key's comment). */
const LOGINS = ['alex', 'jordan', 'sam-k', 'tmorgan', 'casey-dev', 'jamie', 'rileyw', 'chrisp', 'dana', 'mkovacs', 'lnguyen', 'ppatel'];

export interface CanaryOptions {
  /** Random bytes; injectable for tests. */
  random?: (n: number) => Buffer;
  /** The time the files' ages count back from (ms); default now. */
  now?: number;
  /** The machine's name, for the SSH key's comment (`user@host`, as ssh-keygen writes it). */
  hostname?: string;
  /** Every optional variable set (the largest set a run can hold), instead of a drawn mix. */
  everyVariable?: boolean;
}

/**
 * A fresh set of canaries, complete and consistent like a real user's: an AWS key id with its
 * secret (in ~/.aws/credentials, and in the environment when the run sets them), a real Ed25519
 * OpenSSH key, a GitHub token in ~/.git-credentials and an npm token in ~/.npmrc whose checksums
 * are valid, a `.netrc` and a `.pypirc`. Which variables are set is drawn per run (at least one of
 * GITHUB_TOKEN or GH_TOKEN, NPM_TOKEN, the AWS pair, TWINE_USERNAME/TWINE_PASSWORD, HF_TOKEN), so no
 * fixed mix marks the sandbox; a variable that copies a file's secret (as `export NPM_TOKEN` and
 * `.npmrc` do on a real machine) is that file's canary. Every file was written weeks to months ago.
 */
export function makeCanaries(options: CanaryOptions = {}): CanarySet {
  const random = options.random ?? randomBytes;
  const now = options.now ?? Date.now();
  const login = LOGINS[random(1)[0]! % LOGINS.length]!;
  const awsKeyId = `AKIA${draw(UPPER32, 16, random)}`;
  const awsSecret = draw(B64, 40, random);
  const ssh = opensshEd25519(random(32), random(4), `${SANDBOX_USER}@${options.hostname ?? 'localhost'}`);
  const netrcPrefix = 'glpat-';
  const netrcPassword = `${netrcPrefix}${draw(`${ALNUM}-_`, 20, random)}`;
  const pypiPrefix = 'pypi-AgEIcHlwaS5vcmc';
  const pypiToken = `${pypiPrefix}${draw(ALNUM, 48, random)}`;
  const github = checksummedToken('ghp_', random);
  const npm = checksummedToken('npm_', random);
  const hf = `hf_${draw(ALNUM.slice(0, 52), 34, random)}`;

  const pick = random(1)[0]!;
  const has = (bit: number) => options.everyVariable === true || (pick & (1 << bit)) !== 0 || (bit === 0 && (pick & 0x1f) === 0);
  const env: string[] = [];
  if (has(0)) env.push(`${pick & 0x20 ? 'GH_TOKEN' : 'GITHUB_TOKEN'}=${github}`);
  if (has(1)) env.push(`NPM_TOKEN=${npm}`);
  if (has(2)) env.push(`AWS_ACCESS_KEY_ID=${awsKeyId}`, `AWS_SECRET_ACCESS_KEY=${awsSecret}`, 'AWS_DEFAULT_REGION=us-east-1');
  if (has(3)) env.push('TWINE_USERNAME=__token__', `TWINE_PASSWORD=${pypiToken}`);
  if (has(4)) env.push(`HF_TOKEN=${hf}`);

  // Ages: the AWS and SSH keys are the oldest (set up with the machine), tokens renewed since.
  const age = (days: number, spread: number) => daysAgo(now, days, spread, random);
  const files: CanaryFile[] = [
    { path: '.aws/config', content: '[default]\nregion = us-east-1\noutput = json\n', mtime: age(200, 300) },
    { path: '.aws/credentials', content: `[default]\naws_access_key_id = ${awsKeyId}\naws_secret_access_key = ${awsSecret}\n`, mtime: age(120, 200) },
    { path: '.ssh/id_ed25519', content: ssh.text, mtime: age(250, 400) },
    { path: '.ssh/id_ed25519.pub', content: `${ssh.publicLine}\n`, mtime: age(250, 0) },
    { path: '.git-credentials', content: `https://${login}:${github}@github.com\n`, mtime: age(20, 60) },
    { path: '.npmrc', content: `//registry.npmjs.org/:_authToken=${npm}\n`, mtime: age(30, 90) },
    { path: '.netrc', content: `machine gitlab.com\n  login ${login}\n  password ${netrcPassword}\n`, mtime: age(60, 120) },
    { path: '.pypirc', content: `[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = ${pypiToken}\n`, mtime: age(40, 150) },
  ];
  // The public key was written with the private one.
  files[3]!.mtime = files[2]!.mtime;
  return {
    canaries: [
      { name: '~/.aws/credentials aws_secret_access_key', value: awsSecret },
      { name: '~/.aws/credentials aws_access_key_id', value: awsKeyId, publicPrefix: 4 },
      { name: '~/.ssh/id_ed25519', value: ssh.seedChars },
      { name: '~/.netrc password', value: netrcPassword, publicPrefix: netrcPrefix.length },
      { name: '~/.pypirc password', value: pypiToken, publicPrefix: pypiPrefix.length },
      { name: '~/.git-credentials github.com token', value: github, publicPrefix: 4 },
      { name: '~/.npmrc _authToken', value: npm, publicPrefix: 4 },
      ...(has(4) ? [{ name: 'env HF_TOKEN', value: hf, publicPrefix: 3 }] : []),
    ],
    files,
    env,
  };
}

/** The part of a canary that is secret: its value without the prefix every secret of its kind shares. */
export function secretPart(canary: Canary): string {
  return canary.value.slice(canary.publicPrefix ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Signatures: each canary's secret part in each encoding

/** ASCII upper case folded to lower case; every other byte as is. */
const FOLD = new Uint8Array(256).map((_, byte) => (byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte));

interface Signature {
  canary: number;
  encoding: CanaryEncoding;
  /** The encoded text; folded when `fold`. */
  bytes: Uint8Array;
  /** Compared with the input case-folded (hex, base32, case-changed); otherwise exactly. */
  fold: boolean;
  /** Bits of the secret's bytes each character carries: 8 for the character-wise ones, 4 hex, 6 base64, 5 base32. */
  bits: number;
  /** Index of the signature's first character in the encoding of the offset-padded secret. */
  first: number;
  /** Whole secret characters a match must determine. */
  required: number;
  /** Characters in the secret part. */
  of: number;
}

/** Secret characters wholly determined by characters [a, b) of `sig`. */
function wholeChars(sig: Signature, a: number, b: number): number {
  return Math.floor(((sig.first + b) * sig.bits) / 8) - Math.ceil(((sig.first + a) * sig.bits) / 8);
}

function rot13(text: string): string {
  return text.replace(/[A-Za-z]/g, (ch) => {
    const base = ch <= 'Z' ? 65 : 97;
    return String.fromCharCode(((ch.charCodeAt(0) - base + 13) % 26) + base);
  });
}

/** RFC 4648 base32, without padding (a trailing partial character is written, as the encoder would). */
function base32(bytes: Uint8Array): string {
  let out = '';
  let value = 0;
  let bits = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      out += UPPER32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += UPPER32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The characters of a block encoding (bits per character) of the secret preceded by `offset` other
 * bytes that the secret alone decides: what any encoding of a text holding the secret at that
 * offset (mod the block size) contains, whatever surrounds it.
 */
function blockCore(encoded: string, offset: number, length: number, bits: number): { text: string; first: number } {
  const first = Math.ceil((offset * 8) / bits);
  const end = Math.floor(((offset + length) * 8) / bits);
  return { text: encoded.slice(first, end), first };
}

function signaturesOf(canary: Canary, index: number): Signature[] {
  const secret = secretPart(canary);
  const raw = Buffer.from(secret, 'latin1');
  const of = raw.length;
  const required = Math.min(PARTIAL_MIN_CHARS, of);
  const out: Signature[] = [];
  const add = (encoding: CanaryEncoding, text: string, fold: boolean, bits = 8, first = 0) => {
    if (text === '') return;
    const bytes = Buffer.from(fold ? text.toLowerCase() : text, 'latin1');
    // The same text twice (a secret with no `+` or `/` has the same base64url) would only be compared twice.
    if (out.some((s) => s.fold === fold && s.first === first && s.bits === bits && Buffer.compare(s.bytes, bytes) === 0)) return;
    out.push({ canary: index, encoding, bytes, fold, bits, first, required, of });
  };
  add('plain', secret, false);
  add('hex', raw.toString('hex'), true, 4);
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), raw]).toString('base64');
    const { text, first } = blockCore(encoded, offset, of, 6);
    add('base64', text, false, 6, first);
    add('base64url', text.replace(/\+/g, '-').replace(/\//g, '_'), false, 6, first);
  }
  for (let offset = 0; offset < 5; offset++) {
    const { text, first } = blockCore(base32(Buffer.concat([Buffer.alloc(offset), raw])), offset, of, 5);
    add('base32', text, true, 5, first);
  }
  add('reversed', [...secret].reverse().join(''), false);
  add('rot13', rot13(secret), false);
  // Last: it also matches the plain secret, which is named as such when both match.
  if (secret.toLowerCase() !== secret || secret.toUpperCase() !== secret) add('case-changed', secret, true);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Views

const DOT = 0x2e;
const BACKSLASH = 0x5c;
const PERCENT = 0x25;

/** The bytes without `.` and `\` (DNS labels joined), or null when there are none. */
function joined(bytes: Uint8Array): Uint8Array | null {
  if (bytes.indexOf(DOT) < 0 && bytes.indexOf(BACKSLASH) < 0) return null;
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== DOT && b !== BACKSLASH) out[n++] = b;
  }
  return out.subarray(0, n);
}

const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** `%XX` decoded byte-wise, everything else kept; null when nothing was decoded. Never throws. */
function percentDecoded(bytes: Uint8Array): Uint8Array | null {
  let at = bytes.indexOf(PERCENT);
  if (at < 0) return null;
  const out = new Uint8Array(bytes.length);
  let n = 0;
  let decoded = false;
  let from = 0;
  while (at >= 0) {
    const hi = at + 2 < bytes.length ? HEX_VALUE[bytes[at + 1]!]! : -1;
    const lo = at + 2 < bytes.length ? HEX_VALUE[bytes[at + 2]!]! : -1;
    if (hi >= 0 && lo >= 0) {
      out.set(bytes.subarray(from, at), n);
      n += at - from;
      out[n++] = (hi << 4) | lo;
      from = at + 3;
      decoded = true;
    }
    at = bytes.indexOf(PERCENT, hi >= 0 && lo >= 0 ? at + 3 : at + 1);
  }
  if (!decoded) return null;
  out.set(bytes.subarray(from), n);
  n += bytes.length - from;
  return out.subarray(0, n);
}

function viewsOf(bytes: Uint8Array): Array<{ view: CanaryView; bytes: Uint8Array }> {
  const out: Array<{ view: CanaryView; bytes: Uint8Array }> = [{ view: 'as sent', bytes }];
  const join = joined(bytes);
  if (join) out.push({ view: 'labels joined', bytes: join });
  const decoded = percentDecoded(bytes);
  if (decoded) {
    out.push({ view: 'percent-decoded', bytes: decoded });
    const both = joined(decoded);
    if (both) out.push({ view: 'percent-decoded, labels joined', bytes: both });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The index and the scan

/** Rolling-hash base (odd) and the multiplier that spreads a hash over the bitset. */
const BASE = 0x01000193;
const SPREAD = 0x9e3779b1 | 0;
/** 2^22 bits (512 KiB): the about 10,000 indexed windows fill 0.25% of it, so 1 position in 400 reaches the map. */
const FILTER_BITS = 22;
const SHIFT = 32 - FILTER_BITS;

/** Finds canaries in bytes or text (a string is read one byte per character, as latin-1). */
export type CanaryMatch = (data: string | Uint8Array) => CanaryHit[];

/** A matcher for a set of canaries: which of them the data carries, how, and where. */
export function canaryMatcher(canaries: Canary[]): CanaryMatch {
  const sigs = canaries.flatMap((canary, i) => signaturesOf(canary, i));
  if (sigs.length === 0) return () => [];
  // The window is the shortest run any accepted match spans; every match holds at least one.
  const window = Math.max(1, Math.min(...sigs.map((s) => Math.ceil((s.required * 8) / s.bits))));
  let power = 1;
  for (let i = 0; i < window - 1; i++) power = Math.imul(power, BASE);
  const outPower = Math.imul(power, BASE); // BASE^window: what the byte leaving the window weighs

  const filter = new Uint32Array(1 << (FILTER_BITS - 5));
  const entries = new Map<number, number[]>();
  sigs.forEach((sig, s) => {
    for (let j = 0; j + window <= sig.bytes.length; j++) {
      let h = 0;
      for (let k = 0; k < window; k++) h = (Math.imul(h, BASE) + FOLD[sig.bytes[j + k]!]!) | 0;
      const bit = Math.imul(h, SPREAD) >>> SHIFT;
      filter[bit >>> 5]! |= 1 << (bit & 31);
      const list = entries.get(h);
      const entry = s * 65536 + j;
      if (list) list.push(entry);
      else entries.set(h, [entry]);
    }
  });

  const scan = (bytes: Uint8Array, view: CanaryView, best: Array<CanaryHit | undefined>) => {
    const n = bytes.length;
    if (n < window) return;
    // The last maximal span each signature was compared over, by its diagonal (byte offset minus
    // signature offset): a later window on the same diagonal inside it is the same comparison.
    const lastDiag = new Float64Array(sigs.length).fill(Number.NaN);
    const lastTo = new Int32Array(sigs.length).fill(-1);
    let h = 0;
    for (let i = 0; i < window - 1; i++) h = (Math.imul(h, BASE) + FOLD[bytes[i]!]!) | 0;
    let resume = 0;
    for (let i = window - 1; i < n; i++) {
      h = (Math.imul(h, BASE) + FOLD[bytes[i]!]! - (i >= window ? Math.imul(FOLD[bytes[i - window]!]!, outPower) : 0)) | 0;
      const bit = Math.imul(h, SPREAD) >>> SHIFT;
      if ((filter[bit >>> 5]! & (1 << (bit & 31))) === 0) continue;
      const start = i - window + 1;
      if (start < resume) continue;
      const list = entries.get(h);
      if (!list) continue;
      // Of the signatures indexed under this hash, the one that matches furthest (base64 and
      // base64url agree up to the first `+` or `/`); the first on a tie.
      let found: { sig: Signature; chars: number; from: number; to: number } | null = null;
      for (const entry of list) {
        const s = Math.floor(entry / 65536);
        const j = entry % 65536;
        if (lastDiag[s] === start - j && start < lastTo[s]!) continue;
        const sig = sigs[s]!;
        const span = verify(sig, j, bytes, start, window);
        if (span === null) continue;
        lastDiag[s] = start - j;
        lastTo[s] = span.to;
        const chars = wholeChars(sig, span.a, span.b);
        if (chars >= sig.required && (found === null || chars > found.chars)) found = { sig, chars, from: span.from, to: span.to };
      }
      if (found === null) continue;
      const { sig, chars, from, to } = found;
      // The rest of this span is the same match again, shifted: skip it.
      resume = to - window + 1;
      const current = best[sig.canary];
      if (current === undefined || chars > current.chars) {
        best[sig.canary] = {
          canary: canaries[sig.canary]!,
          encoding: view.startsWith('percent') && sig.encoding === 'plain' ? 'url' : sig.encoding,
          chars,
          of: sig.of,
          view,
          offset: from,
          excerpt: excerptOf(bytes, from, to),
        };
      }
    }
  };

  return (data) => {
    // One element kind through the scan (a Buffer is a Uint8Array with another prototype): the
    // loop's property loads stay monomorphic.
    const raw = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    const best: Array<CanaryHit | undefined> = [];
    for (const { view, bytes: viewBytes } of viewsOf(bytes)) {
      // Every secret already found whole: no other view can say more.
      if (canaries.length > 0 && canaries.every((_, i) => best[i] !== undefined && best[i].chars === best[i].of)) break;
      scan(viewBytes, view, best);
    }
    return best.filter((hit): hit is CanaryHit => hit !== undefined);
  };
}

/**
 * Whether `sig` at `j` really is at `start` of `bytes` (not a hash collision), and how far the match
 * reaches either way: signature characters [a, b), bytes [from, to).
 */
function verify(sig: Signature, j: number, bytes: Uint8Array, start: number, window: number): { a: number; b: number; from: number; to: number } | null {
  const s = sig.bytes;
  const same = sig.fold ? (x: number, y: number) => FOLD[x] === y : (x: number, y: number) => x === y;
  for (let k = 0; k < window; k++) if (!same(bytes[start + k]!, s[j + k]!)) return null;
  let a = j;
  let from = start;
  while (a > 0 && from > 0 && same(bytes[from - 1]!, s[a - 1]!)) {
    a--;
    from--;
  }
  let b = j + window;
  let to = start + window;
  while (b < s.length && to < bytes.length && same(bytes[to]!, s[b]!)) {
    b++;
    to++;
  }
  return { a, b, from, to };
}

function excerptOf(bytes: Uint8Array, from: number, to: number): string {
  const text = (a: number, b: number) => Buffer.from(bytes.buffer, bytes.byteOffset + a, b - a).toString('latin1');
  const before = text(Math.max(0, from - EXCERPT_CONTEXT), from);
  const match = to - from > EXCERPT_MATCH ? `${text(from, from + EXCERPT_MATCH)}…` : text(from, to);
  return `${before}${match}${text(to, Math.min(bytes.length, to + EXCERPT_CONTEXT))}`;
}
