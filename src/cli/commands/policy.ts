/**
 * `sandbox-install policy check <file>`: validate a policy file (or preset). Every problem is one
 * `path: message` line on stdout and the exit is 2; a valid policy is printed resolved, exit 0.
 */
import { EXIT } from '../../errors.js';
import { checkPolicy } from '../../policy/load.js';

export async function runPolicyCheck(file: string, out: (text: string) => void = (text) => process.stdout.write(text)): Promise<number> {
  const { policy, problems } = await checkPolicy(file);
  if (problems.length > 0) {
    out(problems.map((p) => `${p.path}: ${p.message}\n`).join(''));
    process.stderr.write(`sandbox-install: ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    return EXIT.input;
  }
  out(JSON.stringify(policy, null, 2) + '\n');
  return EXIT.pass;
}
