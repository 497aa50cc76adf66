import { canonicalMarker } from './marker.js';
import type { LockedRequirement } from './types.js';

/**
 * A requirement's pin as pip and pip-compile write it, without hashes: `name[extras]==version ; marker`.
 * The marker is rendered from its parse again, whoever built the plan: never a marker's raw text.
 */
export function renderPin(req: LockedRequirement): string {
  const extras = req.extras.length > 0 ? `[${req.extras.join(',')}]` : '';
  const marker = req.marker ? ` ; ${canonicalMarker(req.marker)}` : '';
  return `${req.name}${extras}==${req.version}${marker}`;
}
