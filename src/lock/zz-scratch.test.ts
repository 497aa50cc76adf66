import { test } from 'vitest';
import { parseLock } from './parse.js';
test('perf', () => {
  for (const text of ['foo' + ' '.repeat(1_000_000) + 'x', 'foo' + ' \t'.repeat(500_000) + '# x', '-i' + ' '.repeat(1_000_000) + 'x']) {
    const t = Date.now();
    try { parseLock(text, 'f'); } catch (e: any) { console.log(e.code, e.message.slice(0, 60)); }
    console.log(Date.now() - t, 'ms');
  }
});
