/** What a lockfile promises: exact versions and the sha256 of every file pip may install. */
export interface LockedRequirement {
  /** PEP 503 normalised name (lowercase, runs of `-_.` become `-`). */
  name: string;
  /** The name as written in the file. */
  rawName: string;
  version: string;
  extras: string[];
  /** PEP 508 environment marker, verbatim, or null. */
  marker: string | null;
  /** Lowercase hex sha256 digests; at least one. */
  sha256: string[];
  /** 1-based line where the requirement starts. */
  line: number;
}

export interface LockPlan {
  /** Path of the lockfile as given. */
  file: string;
  requirements: LockedRequirement[];
  /** `--index-url` inside the file, if any. */
  indexUrl: string | null;
  /** `--extra-index-url` lines inside the file. */
  extraIndexUrls: string[];
}
