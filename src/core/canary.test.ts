import { describe, expect, it } from 'vitest';
import { canaryMatcher, makeCanaries } from './canary.js';

const set = makeCanaries();
const secret = set.canaries.find((c) => c.name.endsWith('aws_secret_access_key'))!;
const match = canaryMatcher(set.canaries);
const found = (text: string) => match(text).map((hit) => [hit.canary.name, hit.encoding]);

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
      expect(found(`/u/${b64.replace(/\+/g, '-').replace(/\//g, '_')}`)).toEqual([[secret.name, 'base64']]);
    }
  });

  it('finds a whole planted file sent out, and names every secret in it', () => {
    const creds = set.files[0]!.content;
    expect(found(Buffer.from(creds).toString('hex')).sort()).toEqual([
      ['~/.aws/credentials aws_access_key_id', 'hex'],
      ['~/.aws/credentials aws_secret_access_key', 'hex'],
    ]);
  });

  it('does not match part of a value, or unrelated text', () => {
    expect(found(secret.value.slice(0, 20))).toEqual([]);
    expect(found('files.pythonhosted.org GET /simple/requests/')).toEqual([]);
  });
});
