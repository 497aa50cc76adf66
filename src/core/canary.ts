/**
 * Canary secrets: fake credentials planted in every run (files in the sandbox user's home and
 * token-looking environment variables), each a fresh random value. Nothing legitimate ever sends
 * them anywhere, so one seen on the network (a DNS name, an HTTP request line or Host, a TLS SNI,
 * a proxy request path, a datagram) is proof of exfiltration, whatever encoding hid it: plain,
 * hex, base64 (standard or URL-safe, at any byte offset) or percent-encoded.
 */
import { randomBytes } from 'node:crypto';

export interface Canary {
  /** What it stands for, e.g. `~/.aws/credentials aws_secret_access_key`. */
  name: string;
  value: string;
}

export interface CanaryFile {
  /** Relative to the home directory. */
  path: string;
  content: string;
}

export interface CanarySet {
  canaries: Canary[];
  /** Written into the home directory, owned by the sandbox user, mode 0600 (dirs 0700). */
  files: CanaryFile[];
  /** `NAME=value` entries for the sandbox's environment. */
  env: string[];
}

export type CanaryEncoding = 'plain' | 'hex' | 'base64' | 'url';

export interface CanaryHit {
  canary: Canary;
  encoding: CanaryEncoding;
}

const UPPER32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// AWS secret keys use the base64 alphabet: `/` and `+` make a percent-encoded copy differ from the plain one.
const B64 = `${ALNUM}+/`;

function draw(alphabet: string, length: number, random: (n: number) => Buffer): string {
  // 256 is a multiple of 32 and 64 (no bias); for 62 the bias is below 1/4, harmless for a canary.
  return [...random(length)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/** A fresh set of canaries. `random` is injectable for tests. */
export function makeCanaries(random: (n: number) => Buffer = randomBytes): CanarySet {
  const awsKeyId = `AKIA${draw(UPPER32, 16, random)}`;
  const awsSecret = draw(B64, 40, random);
  const sshBody = draw(B64, 64, random);
  const netrcPassword = draw(ALNUM, 32, random);
  const pypiToken = `pypi-AgEIcHlwaS5vcmc${draw(ALNUM, 48, random)}`;
  const github = `ghp_${draw(ALNUM, 36, random)}`;
  const npm = `npm_${draw(ALNUM, 36, random)}`;
  const envSecret = draw(B64, 40, random);
  const ssh = [
    '-----BEGIN OPENSSH PRIVATE KEY-----',
    'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
    sshBody,
    '-----END OPENSSH PRIVATE KEY-----',
    '',
  ].join('\n');
  return {
    canaries: [
      { name: '~/.aws/credentials aws_secret_access_key', value: awsSecret },
      { name: '~/.aws/credentials aws_access_key_id', value: awsKeyId },
      { name: '~/.ssh/id_rsa', value: sshBody },
      { name: '~/.netrc password', value: netrcPassword },
      { name: '~/.pypirc password', value: pypiToken },
      { name: 'env GITHUB_TOKEN', value: github },
      { name: 'env NPM_TOKEN', value: npm },
      { name: 'env AWS_SECRET_ACCESS_KEY', value: envSecret },
    ],
    files: [
      { path: '.aws/credentials', content: `[default]\naws_access_key_id = ${awsKeyId}\naws_secret_access_key = ${awsSecret}\n` },
      { path: '.ssh/id_rsa', content: ssh },
      { path: '.netrc', content: `machine pypi.org\n  login __token__\n  password ${netrcPassword}\n` },
      { path: '.pypirc', content: `[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = ${pypiToken}\n` },
    ],
    env: [`GITHUB_TOKEN=${github}`, `NPM_TOKEN=${npm}`, `AWS_SECRET_ACCESS_KEY=${envSecret}`],
  };
}

/**
 * What each canary looks like in each encoding, as substrings to look for. Base64 depends on the
 * value's offset in whatever was encoded: for each of the three offsets only the characters that
 * the value alone decides are kept.
 */
function signatures(canary: Canary): Array<{ text: string; encoding: CanaryEncoding; foldCase: boolean }> {
  const bytes = Buffer.from(canary.value, 'utf8');
  const out: Array<{ text: string; encoding: CanaryEncoding; foldCase: boolean }> = [
    { text: canary.value, encoding: 'plain', foldCase: false },
    { text: bytes.toString('hex'), encoding: 'hex', foldCase: true },
  ];
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    const encoded = padded.toString('base64');
    const core = encoded.slice(offset === 0 ? 0 : 4, 4 * Math.floor(padded.length / 3));
    out.push({ text: core, encoding: 'base64', foldCase: false });
    const urlSafe = core.replace(/\+/g, '-').replace(/\//g, '_');
    if (urlSafe !== core) out.push({ text: urlSafe, encoding: 'base64', foldCase: false });
  }
  return out;
}

/** `%XX` sequences decoded byte-wise (as latin-1), everything else kept: never throws. */
function percentDecode(text: string): string {
  return text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * The views of one observed string to search: as is, with DNS label separators (and a
 * presentation-format `\`) removed so a value split across labels joins up again, and
 * percent-decoded.
 */
function views(text: string): Array<{ text: string; decoded: boolean }> {
  const joined = text.replace(/[.\\]/g, '');
  const decoded = percentDecode(text);
  const out = [
    { text, decoded: false },
    { text: joined, decoded: false },
  ];
  if (decoded !== text) out.push({ text: decoded, decoded: true }, { text: decoded.replace(/[.\\]/g, ''), decoded: true });
  return out;
}

/** A matcher for a set of canaries: which of them a string carries, and how. */
export function canaryMatcher(canaries: Canary[]): (text: string) => CanaryHit[] {
  const table = canaries.map((canary) => ({ canary, signatures: signatures(canary) }));
  return (text: string) => {
    if (text.length < 8) return [];
    const seen = views(text).map((view) => ({ ...view, folded: view.text.toLowerCase() }));
    const hits: CanaryHit[] = [];
    for (const { canary, signatures: sigs } of table) {
      for (const sig of sigs) {
        const match = seen.find((view) => (sig.foldCase ? view.folded.includes(sig.text) : view.text.includes(sig.text)));
        if (!match) continue;
        hits.push({ canary, encoding: match.decoded && sig.encoding === 'plain' ? 'url' : sig.encoding });
        break;
      }
    }
    return hits;
  };
}
