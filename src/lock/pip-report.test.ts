import { describe, expect, it } from 'vitest';
import { parsePipReport, ReportProblem } from './pip-report.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

function item(name: string, version: string, sha: string, filename: string, extra: Record<string, unknown> = {}) {
  return {
    download_info: { url: `http://127.0.0.1:3141/files/${sha}/${filename}`, archive_info: { hash: `sha256=${sha}` } },
    is_direct: false,
    requested: false,
    metadata: { metadata_version: '2.1', name, version, description: 'long text' },
    ...extra,
  };
}

function report(install: unknown[], environment: Record<string, unknown> = {}) {
  return JSON.stringify({
    version: '1',
    pip_version: '23.0.1',
    install,
    environment: {
      implementation_name: 'cpython',
      sys_platform: 'linux',
      platform_machine: 'x86_64',
      python_full_version: '3.11.2',
      python_version: '3.11',
      ...environment,
    },
  });
}

const parent = item('Parent_App', '1.0', SHA_A, 'parent_app-1.0-py3-none-any.whl', {
  requested: true,
  metadata: { name: 'Parent_App', version: '1.0', requires_dist: ['child-lib (==2.0)', "Child_Lib[x] ; extra == 'y'", 'furo ; extra == "docs"'] },
});
const child = item('child-lib', '2.0', SHA_B, 'child_lib-2.0%2Blocal.tar.gz');

describe('parsePipReport', () => {
  it("reads what pip 23.0's report says of each resolved distribution", () => {
    expect(parsePipReport(report([parent, child]))).toEqual({
      pipVersion: '23.0.1',
      pythonVersion: '3.11.2',
      machine: 'x86_64',
      dists: [
        {
          name: 'parent-app',
          version: '1.0',
          requested: true,
          requires: ['child-lib', 'furo'],
          used: { filename: 'parent_app-1.0-py3-none-any.whl', sha256: SHA_A },
        },
        { name: 'child-lib', version: '2.0', requested: false, requires: [], used: { filename: 'child_lib-2.0+local.tar.gz', sha256: SHA_B } },
      ],
    });
  });

  const problems: Array<[string, string, string | null]> = [
    ['{', "pip's resolution report is not JSON", null],
    [JSON.stringify({ version: '2' }), "pip's resolution report does not have the expected form (version: ", null],
    [report([parent], { sys_platform: 'win32' }), 'does not have the expected form (environment.sys_platform', null],
    [report([parent], { platform_machine: 'x86_64\u001b[31m' }), 'does not have the expected form (environment.platform_machine: not a machine name)', null],
    [report([parent, parent]), "pip's resolution report names parent-app twice", 'parent-app'],
    [report([item('bad name', '1.0', SHA_A, 'x.whl')]), "names a project 'bad name', which is not a valid name", null],
    [report([item('ok', 'one', SHA_A, 'ok-1.0.tar.gz')]), "gives ok the version 'one', which is not PEP 440", 'ok'],
    [report([{ ...item('ok', '1.0', SHA_A, 'ok-1.0.tar.gz'), is_direct: true }]), 'pip resolved ok from a direct URL, not from the index', 'ok'],
    [
      report([{ ...item('ok', '1.0', SHA_A, 'ok-1.0.tar.gz'), download_info: { url: 'https://evil.invalid/ok-1.0.tar.gz' } }]),
      "pip resolved ok 1.0 from 'https://evil.invalid/ok-1.0.tar.gz', which is not a file of the index proxy",
      'ok',
    ],
    [report([item('ok', '1.0', SHA_A, '..%2Fetc%2Fpasswd')]), 'pip resolved ok 1.0 from a file name the proxy never lists', 'ok'],
    [
      report([
        {
          ...item('ok', '1.0', SHA_A, 'ok-1.0.tar.gz'),
          download_info: { url: `http://127.0.0.1:3141/files/${SHA_A}/ok-1.0.tar.gz`, archive_info: { hash: `sha256=${SHA_B}` } },
        },
      ]),
      "pip's resolution report gives ok-1.0.tar.gz a sha256 other than the proxy's",
      'ok',
    ],
  ];
  for (const [text, message, project] of problems) {
    it(`refuses: ${message}`, () => {
      let thrown: unknown = null;
      try {
        parsePipReport(text);
      } catch (error: unknown) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ReportProblem);
      expect((thrown as ReportProblem).message).toContain(message);
      expect((thrown as ReportProblem).project).toBe(project);
    });
  }
});
