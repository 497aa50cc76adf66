/*
 * The canary matcher on random input (issue 19): a canary, whole or a long enough run of it, in any
 * encoding the matcher knows, is found wherever it sits in random bytes; random bytes alone match
 * nothing; and matching stays linear (bounds catch hangs, not speed).
 */
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canaryMatcher, makeCanaries, PARTIAL_MIN_CHARS, secretPart, type CanaryEncoding } from './canary.js';
import { base32, rot13 } from './reference-encodings.js';

const PER_RUN_MS = 10_000;
const BUDGET = { interruptAfterTimeLimit: 4000 } as const;

function quickly<T>(fn: () => T): T {
  const started = performance.now();
  const result = fn();
  expect(performance.now() - started).toBeLessThan(PER_RUN_MS);
  return result;
}

/** A canary set drawn from fast-check's bytes, so a failure replays with its seed. */
const canarySet = fc.uint8Array({ minLength: 512, maxLength: 512 }).map((seed) => {
  let at = 0;
  return makeCanaries({
    random: (n) => {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = seed[at++ % seed.length]! ^ (at >> 9);
      return out;
    },
    everyVariable: true,
  });
});

/** Each encoding: how a package would write a run of the secret (after `lead` bytes of its own), and the names it may be reported by. */
const ENCODERS: Array<{ name: string; block: boolean; encode: (run: string, lead: Buffer) => string; labels: CanaryEncoding[] }> = [
  { name: 'plain', block: false, encode: (run) => run, labels: ['plain'] },
  { name: 'upper', block: false, encode: (run) => run.toUpperCase(), labels: ['case-changed', 'plain'] },
  { name: 'lower', block: false, encode: (run) => run.toLowerCase(), labels: ['case-changed', 'plain'] },
  { name: 'reversed', block: false, encode: (run) => [...run].reverse().join(''), labels: ['reversed'] },
  { name: 'rot13', block: false, encode: rot13, labels: ['rot13', 'plain'] },
  { name: 'percent', block: false, encode: (run) => encodeURIComponent(run), labels: ['url', 'plain'] },
  { name: 'hex', block: false, encode: (run) => Buffer.from(run).toString('hex'), labels: ['hex'] },
  { name: 'HEX', block: false, encode: (run) => Buffer.from(run).toString('hex').toUpperCase(), labels: ['hex'] },
  { name: 'base64', block: true, encode: (run, lead) => Buffer.concat([lead, Buffer.from(run)]).toString('base64'), labels: ['base64'] },
  {
    name: 'base64url',
    block: true,
    encode: (run, lead) => Buffer.concat([lead, Buffer.from(run)]).toString('base64url'),
    labels: ['base64url', 'base64'],
  },
  { name: 'base32', block: true, encode: (run, lead) => base32(Buffer.concat([lead, Buffer.from(run)])), labels: ['base32'] },
  { name: 'base32 lower', block: true, encode: (run, lead) => base32(Buffer.concat([lead, Buffer.from(run)])).toLowerCase(), labels: ['base32'] },
];

describe('the canary matcher on random input', () => {
  it('finds a canary, whole or a run of it long enough, in any encoding, anywhere in random bytes', () => {
    fc.assert(
      fc.property(
        canarySet,
        fc.nat(),
        fc.constantFrom(...ENCODERS),
        fc.nat(),
        fc.nat(),
        fc.uint8Array({ maxLength: 4 }),
        fc.uint8Array({ maxLength: 2048 }),
        fc.uint8Array({ maxLength: 2048 }),
        (set, which, encoder, length, start, lead, before, after) => {
          const canary = set.canaries[which % set.canaries.length]!;
          const secret = secretPart(canary);
          // A block encoding splits characters across its blocks: two more keep PARTIAL_MIN_CHARS whole ones at any offset.
          const least = Math.min(secret.length, PARTIAL_MIN_CHARS + (encoder.block ? 2 : 0));
          const runLength = least + (length % (secret.length - least + 1));
          const from = start % (secret.length - runLength + 1);
          const run = secret.slice(from, from + runLength);
          // Spaces around it: random bytes ending in `%4` must not eat into a percent-encoded run.
          const data = Buffer.concat([Buffer.from(before), Buffer.from(` ${encoder.encode(run, Buffer.from(lead))} `), Buffer.from(after)]);
          const hits = quickly(() => canaryMatcher(set.canaries)(data));
          const hit = hits.find((h) => h.canary === canary);
          expect(hit, `${encoder.name} of ${JSON.stringify(run)}`).toBeDefined();
          expect(encoder.labels).toContain(hit!.encoding);
          expect(hit!.chars).toBeGreaterThanOrEqual(Math.min(PARTIAL_MIN_CHARS, secret.length));
        },
      ),
      { numRuns: 300, ...BUDGET },
    );
  });

  // Real canaries for these two (fresh crypto-random values, as every run has): fast-check's own bytes
  // shrink towards zeros, and a secret of one repeated character would match a run of it in the noise.
  const real = canaryMatcher(makeCanaries().canaries);

  it('finds nothing in random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 * 1024 }), (noise) => {
        expect(quickly(() => real(noise))).toEqual([]);
      }),
      { numRuns: 100, ...BUDGET },
    );
  });

  it("finds nothing in random text of the secrets' own alphabets, the likeliest to match by chance", () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const text = fc.array(fc.constantFrom(...alphabet), { maxLength: 16 * 1024 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(text, (noise) => {
        expect(quickly(() => real(noise))).toEqual([]);
      }),
      { numRuns: 100, ...BUDGET },
    );
  });
});
