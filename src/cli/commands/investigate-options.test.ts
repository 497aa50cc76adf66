import { describe, expect, it } from 'vitest';
import { InvestigateOptions, parseDuration } from './investigate.js';

describe('investigate options', () => {
  it('reads durations in seconds, minutes, hours, days and weeks', () => {
    expect(parseDuration('30d')).toBe(30 * 86_400);
    expect(parseDuration('12h')).toBe(12 * 3600);
    expect(parseDuration('90m')).toBe(5400);
    expect(parseDuration('45s')).toBe(45);
    expect(parseDuration('2w')).toBe(14 * 86_400);
    expect(parseDuration('120')).toBe(120);
    expect(parseDuration('0')).toBe(0);
    for (const bad of ['', '-1d', '1.5d', '30 days', 'd', '1y', '1e9']) expect(parseDuration(bad), bad).toBeNull();
  });

  it('defaults: linger 2 s, 2000 modules, the real clock; a skew past ten years or a bad one is refused', () => {
    expect(InvestigateOptions.parse({})).toMatchObject({ linger: 2, maxModules: 2000, clockSkew: 0, importTimeout: 10 });
    expect(InvestigateOptions.parse({ clockSkew: '30d', linger: '5', maxModules: '10' })).toMatchObject({ clockSkew: 2_592_000, linger: 5, maxModules: 10 });
    expect(InvestigateOptions.safeParse({ clockSkew: '4000d' }).success).toBe(false);
    expect(InvestigateOptions.safeParse({ clockSkew: 'soon' }).success).toBe(false);
    expect(InvestigateOptions.safeParse({ maxModules: '0' }).success).toBe(false);
    expect(InvestigateOptions.safeParse({ linger: '-1' }).success).toBe(false);
  });
});
