/** `sandbox-install policy check <file>`: validate a policy (or preset) and print it resolved. */
import { EXIT } from '../../errors.js';
import { loadPolicy } from '../../policy/load.js';

export async function runPolicyCheck(file: string): Promise<number> {
  const policy = await loadPolicy(file);
  process.stdout.write(JSON.stringify(policy, null, 2) + '\n');
  return EXIT.pass;
}
