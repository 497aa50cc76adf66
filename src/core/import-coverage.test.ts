import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COVERAGE_TAIL_CHARS, parseImportCoverage, type ImportCoverage } from './import-coverage.js';

const coverage: ImportCoverage = {
  planned: 6,
  imported: 4,
  failed: 1,
  timedOut: 1,
  topLevel: 2,
  processes: 3,
  boundHit: false,
  maxModules: 2000,
  lingerSeconds: 2,
  clockSkewSeconds: 0,
  clockSkewUnavailable: false,
  failedModules: ['pkg.broken'],
  timedOutModules: ['pkg.hangs'],
};
const line = (c: unknown) => JSON.stringify({ coverage: c });

describe('parseImportCoverage', () => {
  it("reads the importer's last line among the per-process lines", () => {
    const output = ['{"module": "pkg", "distribution": "pkg", "exitCode": 0}', line(coverage), ''].join('\n');
    expect(parseImportCoverage(output)).toEqual(coverage);
  });

  it('takes the last line that parses: a forged earlier one loses, a broken later one is skipped', () => {
    const forged = { ...coverage, imported: 6, failed: 0, timedOut: 0, failedModules: [], timedOutModules: [] };
    expect(parseImportCoverage([line(forged), line(coverage)].join('\n'))).toEqual(coverage);
    expect(parseImportCoverage([line(coverage), '{"coverage": {"planned": 1', 'supervisor: done'].join('\n'))).toEqual(coverage);
  });

  it('refuses counts that do not add up, and lists past their caps', () => {
    expect(parseImportCoverage(line({ ...coverage, imported: 5 }))).toBeNull();
    expect(parseImportCoverage(line({ ...coverage, failedModules: Array.from({ length: 101 }, (_, i) => `m${i}`) }))).toBeNull();
    expect(parseImportCoverage(line({ ...coverage, failedModules: ['x'.repeat(201)] }))).toBeNull();
    expect(parseImportCoverage(line({ ...coverage, planned: -1 }))).toBeNull();
  });

  it('is null without a coverage line, and looks only at the tail', () => {
    expect(parseImportCoverage('')).toBeNull();
    expect(parseImportCoverage('{"module": "pkg"}\n')).toBeNull();
    expect(parseImportCoverage(`${line(coverage)}\n${'x'.repeat(COVERAGE_TAIL_CHARS)}`)).toBeNull();
  });

  it('never throws on arbitrary output', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constant('{"coverage":'), fc.json())), (parts) => {
        const parsed = parseImportCoverage(parts.join('\n'));
        expect(parsed === null || parsed.imported + parsed.failed + parsed.timedOut === parsed.planned).toBe(true);
      }),
    );
  });
});
