import { normalizeName } from '../lock/normalize.js';
import { renderPin } from '../lock/pin.js';
import { show } from '../lock/problem.js';
import type { LockPlan, PipOptions } from '../lock/types.js';

/**
 * The requirements file pip sees inside the sandbox, rendered from the parsed plan rather than
 * copied: no index or find-links options can ride along, only pinned, hashed requirements. The
 * lockfile's own pip options do not go in here either; they travel as arguments (pipArgsFor), so
 * the sandbox's command line shows everything pip is told and in which order.
 */
export function renderRequirements(plan: Pick<LockPlan, 'requirements'>): string {
  return plan.requirements
    .map((req) => {
      const hashes = req.sha256.map((hex) => ` \\\n    --hash=sha256:${hex}`).join('');
      return `${renderPin(req)}${hashes}\n`;
    })
    .join('');
}

/**
 * pip arguments that give pip the lockfile's options as the plan holds them, starting from pip's
 * empty defaults. The set that holds `:all:` goes first, since `:all:` clears the other set; the
 * two sets share no name, so otherwise order does not matter. Later options win in pip, so these
 * go after anything else on the command line that sets --only-binary or --no-binary: a policy's
 * `--only-binary :all:` before them keeps working for every project they do not name, and
 * conflictsWithOnlyBinaryPolicy says when they would undo it.
 */
export function pipArgsFor(options: PipOptions): string[] {
  const args: string[] = [];
  if (options.pre) args.push('--pre');
  if (options.preferBinary) args.push('--prefer-binary');
  const onlyBinary = options.onlyBinary.length > 0 ? ['--only-binary', options.onlyBinary.join(',')] : [];
  const noBinary = options.noBinary.length > 0 ? ['--no-binary', options.noBinary.join(',')] : [];
  args.push(...(options.noBinary.includes(':all:') ? [...noBinary, ...onlyBinary] : [...onlyBinary, ...noBinary]));
  return args;
}

/**
 * Why the lockfile's options cannot be honoured under a policy that runs pip with
 * `--only-binary :all:`, or null when they can. Any --no-binary still in force asks pip to build
 * from source, which that policy exists to forbid; running anyway would either drop the lock's
 * option or the policy's, so the caller refuses the input instead.
 */
export function conflictsWithOnlyBinaryPolicy(options: PipOptions): string | null {
  if (options.noBinary.length === 0) return null;
  const all = options.noBinary.includes(':all:');
  // The --no-binary options that put something still in force into the set.
  const lines = options.given.flatMap((given) =>
    given.option === 'no-binary' && given.value.split(',').some((item) => (all ? item === ':all:' : options.noBinary.includes(normalizeName(item))))
      ? [given.line]
      : [],
  );
  const where = lines.length === 0 ? '' : ` (${lines.length === 1 ? 'line' : 'lines'} ${lines.join(', ')})`;
  const what = all ? 'every project' : show(options.noBinary.join(', '));
  return `the lockfile's --no-binary${where} asks pip to build ${what} from source, but the policy allows wheels only (onlyBinary); remove --no-binary from the lockfile or use a policy without onlyBinary`;
}
