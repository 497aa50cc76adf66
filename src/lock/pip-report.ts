/*
 * pip's installation report (`pip install --dry-run --report`, format version 1), as the resolve
 * phase leaves it in the sandbox. The sandbox user can write that file, so it is hostile input:
 * size-capped by the caller, parsed with a schema, every name, version and URL checked, and each
 * resolved file tied to the index proxy's own URL for it (`/files/<sha256>/<filename>`), so the
 * report can only name files the proxy served. Pure.
 */
import { z } from 'zod';
import { RELAY_PORT } from '../core/layout.js';
import { isValidProjectName, normalizeName } from './normalize.js';
import { show } from './problem.js';
import { isPep440Version } from './version.js';

/** Far more than any real resolution. */
const MAX_INSTALL_ITEMS = 5000;
const MAX_REQUIRES = 2000;

const InstallItem = z.object({
  download_info: z.object({
    url: z.string().max(4096),
    archive_info: z.object({ hash: z.string().max(200).optional(), hashes: z.record(z.string().max(32), z.string().max(200)).optional() }).optional(),
  }),
  is_direct: z.boolean(),
  requested: z.boolean(),
  metadata: z.object({
    name: z.string().max(200),
    version: z.string().max(200),
    requires_dist: z.array(z.string().max(8192)).max(MAX_REQUIRES).optional(),
  }),
});

const PipReport = z.object({
  version: z.literal('1'),
  pip_version: z.string().regex(/^[0-9]+(?:\.[0-9]+){0,3}(?:[a-z0-9.+-]{0,16})$/, 'not a pip version'),
  install: z.array(InstallItem).max(MAX_INSTALL_ITEMS),
  environment: z.object({
    implementation_name: z.literal('cpython'),
    sys_platform: z.literal('linux'),
    platform_machine: z.string().regex(/^[a-z0-9_]{1,32}$/, 'not a machine name'),
    python_full_version: z.string().regex(/^3\.[0-9]{1,2}\.[0-9]{1,3}(?:[a-z0-9]{0,8})$/, 'not a CPython 3 version'),
  }),
});

export interface ResolvedDist {
  /** PEP 503 normalised. */
  name: string;
  version: string;
  /** Named in the requirements (pip's `requested`). */
  requested: boolean;
  /** Normalised names of the projects its Requires-Dist names, whatever their markers and extras. */
  requires: string[];
  /** The file pip resolved with, as the proxy served it. */
  used: { filename: string; sha256: string };
}

export interface Resolution {
  pipVersion: string;
  pythonVersion: string;
  machine: string;
  dists: ResolvedDist[];
}

/** The report cannot be used; the message says why (package-controlled parts escaped). */
export class ReportProblem extends Error {
  constructor(
    message: string,
    readonly project: string | null = null,
  ) {
    super(message);
    this.name = 'ReportProblem';
  }
}

/** The proxy's URL of a file (proxy/pages.ts fileHref, resolved against the relay): its sha256 and URI-encoded name. */
const PROXY_FILE = new RegExp(`^http://127\\.0\\.0\\.1:${RELAY_PORT}/files/([0-9a-f]{64})/([A-Za-z0-9%._!-]{1,800})$`);
/** proxy/names.ts isSafeFilename: the only names the proxy lists. */
const SAFE_FILENAME = /^[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}$/;
const REQUIREMENT_NAME = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/;

/** Parse the report's text. Throws ReportProblem on anything it cannot vouch for. */
export function parsePipReport(text: string): Resolution {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ReportProblem("pip's resolution report is not JSON");
  }
  const parsed = PipReport.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ReportProblem(`pip's resolution report does not have the expected form (${show(issue?.path.join('.') ?? '')}: ${show(issue?.message ?? '?')})`);
  }
  const report = parsed.data;
  const seen = new Set<string>();
  const dists = report.install.map((item): ResolvedDist => {
    const { name: rawName, version } = item.metadata;
    if (!isValidProjectName(rawName)) throw new ReportProblem(`pip's resolution report names a project '${show(rawName)}', which is not a valid name`);
    const name = normalizeName(rawName);
    if (seen.has(name)) throw new ReportProblem(`pip's resolution report names ${name} twice`, name);
    seen.add(name);
    if (!isPep440Version(version)) throw new ReportProblem(`pip's resolution report gives ${name} the version '${show(version)}', which is not PEP 440`, name);
    if (item.is_direct) throw new ReportProblem(`pip resolved ${name} from a direct URL, not from the index`, name);
    const file = PROXY_FILE.exec(item.download_info.url);
    if (!file) throw new ReportProblem(`pip resolved ${name} ${version} from '${show(item.download_info.url)}', which is not a file of the index proxy`, name);
    const [, sha256, encoded] = file as unknown as [string, string, string];
    const filename = safeDecode(encoded);
    if (filename === null || !SAFE_FILENAME.test(filename))
      throw new ReportProblem(`pip resolved ${name} ${version} from a file name the proxy never lists`, name);
    const archive = item.download_info.archive_info;
    const claimed = [archive?.hashes?.sha256, archive?.hash?.startsWith('sha256=') ? archive.hash.slice('sha256='.length) : undefined].filter(
      (h) => h !== undefined,
    );
    if (claimed.some((hex) => hex !== sha256)) throw new ReportProblem(`pip's resolution report gives ${filename} a sha256 other than the proxy's`, name);
    const requires = (item.metadata.requires_dist ?? []).flatMap((requirement) => {
      const match = REQUIREMENT_NAME.exec(requirement)?.[1];
      return match !== undefined && isValidProjectName(match) ? [normalizeName(match)] : [];
    });
    return { name, version, requested: item.requested, requires: [...new Set(requires)], used: { filename, sha256 } };
  });
  return {
    pipVersion: report.pip_version,
    pythonVersion: report.environment.python_full_version,
    machine: report.environment.platform_machine,
    dists,
  };
}

function safeDecode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}
