/** What a lockfile promises: exact versions and the sha256 of every file pip may install. */
export interface LockedRequirement {
  /** PEP 503 normalised name (lowercase, runs of `-_.` become `-`). */
  name: string;
  /** The name as written in the file. */
  rawName: string;
  version: string;
  extras: string[];
  /**
   * PEP 508 environment marker, or null: the canonical rendering of its parse (lock/marker.ts
   * canonicalMarker), never the lockfile's text, so no control character or line break can ride
   * along into a file pip reads. Writers render it again from a parse (canonicalMarker).
   */
  marker: string | null;
  /** Lowercase hex sha256 digests; at least one. */
  sha256: string[];
  /** 1-based line where the requirement starts. */
  line: number;
  /**
   * The files behind `sha256`, when the lockfile says which is a wheel and which an sdist:
   * pylock.toml does, a requirements file does not (its parser leaves this out).
   */
  files?: LockedRequirementFile[];
}

/** One file a lockfile names for a requirement. */
export interface LockedRequirementFile {
  /** The file name the lockfile gives (its `name`, or the last segment of its `url` or `path`), or null when it gives none. */
  filename: string | null;
  /** Lowercase hex; one of the requirement's `sha256`. */
  sha256: string;
  kind: 'wheel' | 'sdist';
}

/** One option of an options line that changes which files pip picks. */
export type PipOption =
  | { option: 'pre' | 'prefer-binary' }
  /** `value` as written: comma-separated `:all:`, `:none:` and project names, already checked. */
  | { option: 'only-binary' | 'no-binary'; value: string };

/** A PipOption with the 1-based line it is on. */
export type PipOptionLine = PipOption & { line: number };

/**
 * The lockfile's options that change what pip installs, as pip would end up with them after
 * reading the whole file (see pip-options.ts for how repeated and contradictory options combine).
 */
export interface PipOptions {
  /** `--pre`: pip may pick pre-releases. */
  pre: boolean;
  /** `--prefer-binary`: pip prefers an older wheel to a newer sdist. */
  preferBinary: boolean;
  /**
   * pip's effective `--only-binary` set: `[':all:']`, or sorted normalised project names. Never
   * shares a name with `noBinary`, and at most one of the two holds `:all:`.
   */
  onlyBinary: string[];
  /** pip's effective `--no-binary` set, in the same form as `onlyBinary`. */
  noBinary: string[];
  /** Every option above as the file gave it, in file order, so messages can point at lines. */
  given: PipOptionLine[];
}

export interface LockPlan {
  /** Path of the lockfile as given. */
  file: string;
  requirements: LockedRequirement[];
  /** `--index-url` inside the file, if any. */
  indexUrl: string | null;
  /** `--extra-index-url` lines inside the file. */
  extraIndexUrls: string[];
  /** `--pre`, `--prefer-binary`, `--only-binary`, `--no-binary` inside the file, combined. */
  pipOptions: PipOptions;
}
