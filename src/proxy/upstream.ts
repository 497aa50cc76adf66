import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Where the proxy fetches pages and files from: pip's `index-url` and `extra-index-url`. */
export interface Upstreams {
  indexUrl: string;
  extraIndexUrls: string[];
}

export interface UpstreamCliOptions {
  indexUrl?: string;
  /** Replaces the configured extra indexes when non-empty (pip itself would append). */
  extraIndexUrls?: string[];
}

export interface PipConfigFile {
  path: string;
  text: string;
}

export const DEFAULT_INDEX_URL = 'https://pypi.org/simple';

/**
 * Parse an INI file the way Python's `RawConfigParser` does for pip: `key = value` or
 * `key: value`, full-line `#`/`;` comments, indented continuation lines, keys lowercased, no
 * interpolation. Section names stay case-sensitive. Repeated keys: the last one wins (Python
 * would refuse the file).
 */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | null = null;
  let lastKey: string | null = null;
  let lastIndent = 0;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.replace(/\s+$/, '');
    const indent = line.length - line.trimStart().length;
    const body = line.trim();
    if (body === '') {
      // Blank lines may sit inside a multi-line value; they add nothing pip splits on.
      continue;
    }
    if (body.startsWith('#') || body.startsWith(';')) continue;
    if (current && lastKey !== null && indent > lastIndent) {
      current.set(lastKey, `${current.get(lastKey) ?? ''}\n${body}`.trim());
      continue;
    }
    const section = /^\[(.+)\]$/.exec(body);
    if (section?.[1] !== undefined) {
      const name = section[1].trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      lastKey = null;
      continue;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(body);
    if (!current || !kv?.[1]) {
      lastKey = null;
      continue;
    }
    lastKey = kv[1].trim().toLowerCase();
    lastIndent = indent;
    current.set(lastKey, (kv[2] ?? '').trim());
  }
  return sections;
}

/** pip's `_normalize_name`: lowercase, `_` to `-`, drop a leading `--`. */
function pipOptionName(key: string): string {
  const name = key.toLowerCase().replace(/_/g, '-');
  return name.startsWith('--') ? name.slice(2) : name;
}

/**
 * The config file paths pip reads on Linux, lowest precedence first, grouped the way pip loads
 * them: global (`$XDG_CONFIG_DIRS/pip/pip.conf`, `/etc/pip.conf`), user (`~/.pip/pip.conf`,
 * `$XDG_CONFIG_HOME/pip/pip.conf`), site (`$VIRTUAL_ENV/pip.conf`), then `PIP_CONFIG_FILE`.
 */
export function pipConfigPaths(
  env: NodeJS.ProcessEnv,
  homedir: string,
): {
  global: string[];
  user: string[];
  site: string[];
  envFile: string | null;
} {
  const xdgDirs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').filter((d) => d !== '');
  const xdgHome = env.XDG_CONFIG_HOME || path.join(homedir, '.config');
  return {
    global: [...xdgDirs.map((d) => path.join(d, 'pip', 'pip.conf')), '/etc/pip.conf'],
    user: [path.join(homedir, '.pip', 'pip.conf'), path.join(xdgHome, 'pip', 'pip.conf')],
    site: env.VIRTUAL_ENV ? [path.join(env.VIRTUAL_ENV, 'pip.conf')] : [],
    envFile: env.PIP_CONFIG_FILE || null,
  };
}

/**
 * Read pip's config files in precedence order (lowest first), through an injected `readFile`
 * that returns null for a missing file. As pip does, user files are skipped when
 * `PIP_CONFIG_FILE` names a file that exists (so `PIP_CONFIG_FILE=/dev/null` hides them).
 */
export async function loadPipConfigFiles(opts: {
  env: NodeJS.ProcessEnv;
  homedir: string;
  readFile: (path: string) => Promise<string | null>;
}): Promise<PipConfigFile[]> {
  const paths = pipConfigPaths(opts.env, opts.homedir);
  const read = async (p: string): Promise<PipConfigFile | null> => {
    const text = await opts.readFile(p);
    return text === null ? null : { path: p, text };
  };
  const envFile = paths.envFile === null ? null : await read(paths.envFile);
  const ordered: Array<PipConfigFile | null> = [];
  for (const p of paths.global) ordered.push(await read(p));
  if (!envFile) for (const p of paths.user) ordered.push(await read(p));
  for (const p of paths.site) ordered.push(await read(p));
  ordered.push(envFile);
  return ordered.filter((f): f is PipConfigFile => f !== null);
}

function splitUrls(value: string): string[] {
  return value.split(/\s+/).filter((u) => u !== '');
}

/**
 * Resolve the upstreams the way pip does: `files` in precedence order (lowest first), each
 * file's keys merged per section; then `[global]`, then `[install]`; then `PIP_*` environment
 * variables; then the CLI. Each layer replaces a key, it never appends.
 */
export function resolveUpstreams(opts: { cli: UpstreamCliOptions; env: NodeJS.ProcessEnv; files: PipConfigFile[] }): Upstreams {
  const merged = new Map<string, Map<string, string>>([
    ['global', new Map()],
    ['install', new Map()],
  ]);
  for (const file of opts.files) {
    for (const [section, values] of parseIni(file.text)) {
      const target = merged.get(section);
      if (!target) continue;
      for (const [key, value] of values) target.set(pipOptionName(key), value);
    }
  }
  const settings = new Map<string, string>();
  for (const section of ['global', 'install']) {
    for (const [key, value] of merged.get(section) ?? []) settings.set(key, value);
  }
  for (const [key, value] of Object.entries(opts.env)) {
    if (!key.startsWith('PIP_') || value === undefined) continue;
    const name = pipOptionName(key.slice(4));
    if (name === 'index-url' || name === 'extra-index-url') settings.set(name, value);
  }

  const configuredIndex = settings.get('index-url')?.trim();
  const indexUrl = opts.cli.indexUrl?.trim() || configuredIndex || DEFAULT_INDEX_URL;
  const cliExtras = (opts.cli.extraIndexUrls ?? []).flatMap(splitUrls);
  const extras = cliExtras.length > 0 ? cliExtras : splitUrls(settings.get('extra-index-url') ?? '');
  const extraIndexUrls = [...new Set(extras)].filter((u) => u !== indexUrl);
  return { indexUrl, extraIndexUrls };
}

/** `resolveUpstreams` over the real file system and home directory. */
export async function pipConfiguredUpstreams(cli: UpstreamCliOptions, env: NodeJS.ProcessEnv = process.env): Promise<Upstreams> {
  const files = await loadPipConfigFiles({
    env,
    homedir: env.HOME || os.homedir(),
    readFile: async (p) => {
      try {
        return await readFile(p, 'utf8');
      } catch (error: unknown) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'EACCES') return null;
        throw error;
      }
    },
  });
  return resolveUpstreams({ cli, env, files });
}
