/*
 * The lockfile options that change which files pip picks: --pre, --prefer-binary, --only-binary
 * and --no-binary. pip also hands them on to the isolated environment in which it installs an
 * sdist's build dependencies, so they matter even with every version pinned. The plan keeps them
 * and the sandbox passes them to pip as arguments (sandbox/requirements.ts, pipArgsFor).
 *
 * --only-binary and --no-binary combine the way pip's FormatControl.handle_mutual_excludes
 * (pip/_internal/models/format_control.py, unchanged from pip 22 to 24) combines them, one option
 * after another in file order, so the later option wins:
 * - each value is split at commas;
 * - if it holds `:all:`, both sets are cleared, the option's own set becomes {`:all:`} and the
 *   items up to that `:all:` are dropped; the items after it are dropped too, unless a `:none:`
 *   follows somewhere (then the same is done for any later `:all:`, and the rest is read below);
 * - `:none:` clears the option's own set only;
 * - a name is normalised, removed from the other set and added to the option's own.
 * So `--no-binary :all:` also cancels every earlier --only-binary, and `--only-binary foo` after
 * `--no-binary foo` moves foo from one set to the other.
 *
 * pip then decides per project (get_allowed_formats): its name in only-binary, else its name in
 * no-binary, else `:all:` in only-binary, else `:all:` in no-binary. The sets kept in the plan drop
 * the names that sit beside `:all:` in the same set: such a name is never in the other set, so
 * `:all:` decides it the same way. That makes equal behaviour mean equal plans.
 */
import { normalizeName } from './normalize.js';
import type { PipOptionLine, PipOptions } from './types.js';

const ALL = ':all:';
const NONE = ':none:';

export interface FormatControlStep {
  option: 'only-binary' | 'no-binary';
  value: string;
}

export interface FormatControl {
  onlyBinary: string[];
  noBinary: string[];
}

/** What a lockfile without any of these options gives pip: nothing. A fresh object each call. */
export function noPipOptions(): PipOptions {
  return { pre: false, preferBinary: false, onlyBinary: [], noBinary: [], given: [] };
}

/** Pure: the options pip ends up with after reading `given` in order. */
export function pipOptionsOf(given: readonly PipOptionLine[]): PipOptions {
  return {
    pre: given.some((option) => option.option === 'pre'),
    preferBinary: given.some((option) => option.option === 'prefer-binary'),
    ...combineFormatControl(given.flatMap((option) => (option.option === 'only-binary' || option.option === 'no-binary' ? [option] : []))),
    given: [...given],
  };
}

/** Pure: pip's --only-binary / --no-binary sets after `steps`, starting from empty sets. */
export function combineFormatControl(steps: readonly FormatControlStep[]): FormatControl {
  const onlyBinary = new Set<string>();
  const noBinary = new Set<string>();
  for (const { option, value } of steps) {
    if (option === 'only-binary') handleMutualExcludes(value, onlyBinary, noBinary);
    else handleMutualExcludes(value, noBinary, onlyBinary);
  }
  return { onlyBinary: effective(onlyBinary), noBinary: effective(noBinary) };
}

/** pip's FormatControl.handle_mutual_excludes, line for line. */
function handleMutualExcludes(value: string, target: Set<string>, other: Set<string>): void {
  let items = value.split(',');
  while (items.includes(ALL)) {
    other.clear();
    target.clear();
    target.add(ALL);
    items = items.slice(items.indexOf(ALL) + 1);
    // pip: "Without a none, we want to discard everything as :all: covers it".
    if (!items.includes(NONE)) return;
  }
  for (const item of items) {
    if (item === NONE) {
      target.clear();
      continue;
    }
    const name = normalizeName(item);
    other.delete(name);
    target.add(name);
  }
}

function effective(set: Set<string>): string[] {
  return set.has(ALL) ? [ALL] : [...set].sort();
}
