import type { LockPlan } from '../lock/types.js';

/**
 * The requirements file pip sees inside the sandbox, rendered from the parsed plan rather than
 * copied: no index or find-links options can ride along, only pinned, hashed requirements.
 */
export function renderRequirements(plan: LockPlan): string {
  return plan.requirements
    .map((req) => {
      const extras = req.extras.length > 0 ? `[${req.extras.join(',')}]` : '';
      const marker = req.marker ? ` ; ${req.marker}` : '';
      const hashes = req.sha256.map((hex) => ` \\\n    --hash=sha256:${hex}`).join('');
      return `${req.name}${extras}==${req.version}${marker}${hashes}\n`;
    })
    .join('');
}
